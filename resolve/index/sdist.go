package index

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/bitpoll-install/bitpoll-install/safearchive"
	"github.com/pelletier/go-toml/v2"
)

// legacyBuildRequires is what PEP 517 front ends assume for an sdist
// without a [build-system] table.
var legacyBuildRequires = []string{"setuptools>=40.8.0"}

// LegacyBuildRequires returns the PEP 517 default build requirements, used
// for sdists that do not declare any.
func LegacyBuildRequires() []string {
	return append([]string(nil), legacyBuildRequires...)
}

// SdistBuildRequires downloads the sdist f, verifies it, and returns
// [build-system].requires from its top-level pyproject.toml, or
// LegacyBuildRequires when there is no such file or table. The archive is
// read through safearchive, under the client's limits; nothing is
// extracted.
func (c *Client) SdistBuildRequires(ctx context.Context, f File) ([]string, error) {
	kind := sdistKind(f.Filename)
	if kind == "" {
		return nil, fmt.Errorf("read sdist %s: unknown archive type, want .tar.gz, .tgz, .tar.bz2 or .zip", f.Filename)
	}
	tmp, err := c.download(ctx, f, MaxSdistSize)
	if errors.Is(err, errStatusNotFound) {
		return nil, fmt.Errorf("download %s: the index lists it but answers 404: %w", f.URL, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	defer closeRemove(tmp)

	data, found, err := readPyproject(tmp.Name(), f.Filename, c.unpack)
	if err != nil {
		return nil, fmt.Errorf("read sdist %s: %w", f.Filename, err)
	}
	if !found {
		return LegacyBuildRequires(), nil
	}
	reqs, err := parseBuildRequires(data)
	if err != nil {
		return nil, fmt.Errorf("read sdist %s: pyproject.toml: %w", f.Filename, err)
	}
	return reqs, nil
}

func parseBuildRequires(data []byte) ([]string, error) {
	var doc struct {
		BuildSystem *struct {
			Requires *[]string `toml:"requires"`
		} `toml:"build-system"`
	}
	if err := toml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.BuildSystem == nil {
		return LegacyBuildRequires(), nil
	}
	if doc.BuildSystem.Requires == nil {
		return nil, fmt.Errorf("[build-system] has no requires key: PEP 518 makes it mandatory; the sdist cannot be built reproducibly")
	}
	return append([]string{}, *doc.BuildSystem.Requires...), nil
}

func sdistKind(filename string) string {
	switch {
	case strings.HasSuffix(filename, ".tar.gz"), strings.HasSuffix(filename, ".tgz"):
		return "gz"
	case strings.HasSuffix(filename, ".tar.bz2"):
		return "bz2"
	case strings.HasSuffix(filename, ".zip"):
		return "zip"
	}
	return ""
}

// sdistTop is the folder an sdist is expected to unpack into.
func sdistTop(filename string) string {
	for _, ext := range []string{".tar.gz", ".tgz", ".tar.bz2", ".zip"} {
		if s, ok := strings.CutSuffix(filename, ext); ok {
			return s
		}
	}
	return filename
}

// sdistPolicy is what an sdist may hold when only its pyproject.toml is
// read: links are accepted if they stay inside it, as a build accepts
// them, since nothing is written.
func sdistPolicy(lim safearchive.Limits) safearchive.Policy {
	return safearchive.Policy{Limits: lim, Symlinks: true, Hardlinks: true, DotSlash: true}
}

// pyprojectMatch collects top-level pyproject.toml candidates. An sdist
// should have one top folder; if several have a pyproject.toml the one
// named after the file wins.
type pyprojectMatch struct {
	want  string
	tops  map[string][]byte
	order []string
}

func (m *pyprojectMatch) isCandidate(clean string) bool {
	top, rest, ok := strings.Cut(clean, "/")
	return ok && top != "" && rest == "pyproject.toml"
}

func (m *pyprojectMatch) add(clean string, data []byte) {
	top, _, _ := strings.Cut(clean, "/")
	if m.tops == nil {
		m.tops = map[string][]byte{}
	}
	if _, ok := m.tops[top]; !ok {
		m.order = append(m.order, top)
	}
	m.tops[top] = data
}

func (m *pyprojectMatch) result() ([]byte, bool, error) {
	switch {
	case len(m.order) == 0:
		return nil, false, nil
	case len(m.order) == 1:
		return m.tops[m.order[0]], true, nil
	}
	if data, ok := m.tops[m.want]; ok {
		return data, true, nil
	}
	return nil, false, fmt.Errorf("pyproject.toml found in %q: want one top folder, or one named %q", m.order, m.want)
}

// readPyproject reads the top-level pyproject.toml of the sdist at path
// through safearchive, which checks every member on the way.
func readPyproject(path, filename string, lim safearchive.Limits) ([]byte, bool, error) {
	m := pyprojectMatch{want: sdistTop(filename)}
	err := safearchive.Walk(path, sdistPolicy(lim), func(mem *safearchive.Member, body io.Reader) error {
		if !m.isCandidate(mem.Path) {
			return nil
		}
		if mem.Type != safearchive.File {
			return fmt.Errorf("%s is a %v, not a regular file: refusing the sdist", mem.Name, mem.Type)
		}
		data, err := readAll(body, MaxPyprojectSize)
		if err != nil {
			return fmt.Errorf("%s: %w", mem.Name, err)
		}
		m.add(mem.Path, data)
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return m.result()
}
