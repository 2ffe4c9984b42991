package index

import (
	"archive/tar"
	"archive/zip"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/bitpoll-install/bitpoll-install/archivecheck"
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
// LegacyBuildRequires when there is no such file or table. It reads the
// archive in memory and refuses archives with absolute or ".." member
// paths; nothing is extracted.
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

	var data []byte
	var found bool
	if kind == "zip" {
		data, found, err = zipPyproject(tmp, f.Filename)
	} else {
		data, found, err = tarPyproject(tmp, kind, f.Filename)
	}
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

// checkMember applies archivecheck's name policy (a leading "./" is
// allowed) and returns the name without it or a trailing slash.
func checkMember(name string) (string, error) {
	rel := strings.TrimPrefix(name, "./")
	if err := archivecheck.CheckName(rel); err != nil {
		return "", fmt.Errorf("member %q %v: refusing the sdist", name, err)
	}
	return strings.TrimSuffix(rel, "/"), nil
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
	m.tops[top] = data // a later duplicate wins, as it would on extraction
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

func tarPyproject(f *os.File, kind, filename string) ([]byte, bool, error) {
	var r io.Reader
	switch kind {
	case "gz":
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, false, err
		}
		defer zr.Close()
		r = zr
	case "bz2":
		r = bzip2.NewReader(f)
	}
	m := pyprojectMatch{want: sdistTop(filename)}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false, err
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		clean, err := checkMember(h.Name)
		if err != nil {
			return nil, false, err
		}
		if h.Typeflag == tar.TypeLink {
			if _, err := checkMember(h.Linkname); err != nil {
				return nil, false, fmt.Errorf("hard link %q: %w", h.Name, err)
			}
		}
		if h.Typeflag == tar.TypeSymlink {
			if err := checkSymlink(clean, h.Linkname); err != nil {
				return nil, false, err
			}
		}
		if !m.isCandidate(clean) {
			continue
		}
		if h.Typeflag != tar.TypeReg {
			return nil, false, fmt.Errorf("%s is not a regular file (type %q): refusing the sdist", h.Name, h.Typeflag)
		}
		data, err := readAll(tr, MaxPyprojectSize)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", h.Name, err)
		}
		m.add(clean, data)
	}
	return m.result()
}

// checkSymlink refuses links whose target leaves the archive.
func checkSymlink(name, target string) error {
	resolved := path.Join(path.Dir(name), target)
	if path.IsAbs(target) || resolved == ".." || strings.HasPrefix(resolved, "../") {
		return fmt.Errorf("symlink %q points to %q, outside the archive: refusing the sdist", name, target)
	}
	return nil
}

func zipPyproject(f *os.File, filename string) ([]byte, bool, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		return nil, false, err
	}
	m := pyprojectMatch{want: sdistTop(filename)}
	for _, zf := range zr.File {
		clean, err := checkMember(zf.Name)
		if err != nil {
			return nil, false, err
		}
		if !m.isCandidate(clean) {
			continue
		}
		if !zf.Mode().IsRegular() {
			return nil, false, fmt.Errorf("%s is not a regular file (mode %v): refusing the sdist", zf.Name, zf.Mode())
		}
		rc, err := zf.Open()
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", zf.Name, err)
		}
		data, err := readAll(rc, MaxPyprojectSize)
		rc.Close()
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", zf.Name, err)
		}
		m.add(clean, data)
	}
	return m.result()
}
