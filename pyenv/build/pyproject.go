package build

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// LegacyBackend is the backend PEP 517 front ends use for a source tree
// without [build-system].build-backend: setuptools running setup.py.
const LegacyBackend = "setuptools.build_meta:__legacy__"

// maxConfigSize bounds pyproject.toml and PKG-INFO, which are read into
// memory.
const maxConfigSize = 1 << 20

// backend is how to reach a PEP 517 build backend.
type backend struct {
	Spec string   // "module.path:object.path"; the object part is optional
	Path []string // absolute backend-path entries, inside the source tree
}

var backendRE = regexp.MustCompile(`^\s*[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\s*(:\s*[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\s*)?$`)

// readBackend reads [build-system] from src/pyproject.toml. A missing file,
// table or build-backend key means the legacy setuptools backend.
func readBackend(src string) (backend, error) {
	data, err := readSmall(filepath.Join(src, "pyproject.toml"))
	if errors.Is(err, fs.ErrNotExist) {
		return backend{Spec: LegacyBackend}, nil
	}
	if err != nil {
		return backend{}, err
	}
	var doc struct {
		BuildSystem struct {
			Backend     *string  `toml:"build-backend"`
			BackendPath []string `toml:"backend-path"`
		} `toml:"build-system"`
	}
	if err := toml.Unmarshal(data, &doc); err != nil {
		return backend{}, fmt.Errorf("parse pyproject.toml: %w", err)
	}
	bs := doc.BuildSystem
	if bs.Backend == nil {
		return backend{Spec: LegacyBackend}, nil
	}
	if !backendRE.MatchString(*bs.Backend) {
		return backend{}, fmt.Errorf("pyproject.toml: build-backend %q is not module:object with dotted Python names", *bs.Backend)
	}
	b := backend{Spec: strings.ReplaceAll(*bs.Backend, " ", "")}
	root, err := filepath.EvalSymlinks(src)
	if err != nil {
		return backend{}, err
	}
	for _, p := range bs.BackendPath {
		// PEP 517: every entry must resolve inside the source tree.
		abs, err := filepath.EvalSymlinks(filepath.Join(root, filepath.FromSlash(p)))
		if filepath.IsAbs(p) || err != nil || (abs != root && !strings.HasPrefix(abs, root+string(filepath.Separator))) {
			return backend{}, fmt.Errorf("pyproject.toml: backend-path entry %q must be an existing directory inside the source tree", p)
		}
		b.Path = append(b.Path, abs)
	}
	return b, nil
}

// readSmall reads a file of at most maxConfigSize bytes.
func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxConfigSize+1)); err != nil {
		return nil, err
	}
	if buf.Len() > maxConfigSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", filepath.Base(path), maxConfigSize)
	}
	return buf.Bytes(), nil
}

// sdistIdentity returns the project name and version of the unpacked sdist
// at src: from PKG-INFO, which every sdist made by a PEP 517 backend has,
// or else from a top directory named <name>-<version>.
func sdistIdentity(src string) (name, version string, err error) {
	data, err := readSmall(filepath.Join(src, "PKG-INFO"))
	if err == nil {
		name, version = metadataField(data, "Name"), metadataField(data, "Version")
		if name == "" || version == "" {
			return "", "", errors.New("PKG-INFO has no Name or Version field")
		}
		return name, version, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", "", err
	}
	top := filepath.Base(src)
	i := strings.LastIndexByte(top, '-')
	if i <= 0 || i == len(top)-1 {
		return "", "", fmt.Errorf("sdist has no PKG-INFO and its top directory %q is not <name>-<version>", top)
	}
	return top[:i], top[i+1:], nil
}

// metadataField returns the first value of key in the header block of a
// core metadata file (RFC 822 style).
func metadataField(data []byte, key string) string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			break // the description body follows
		}
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), key) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
