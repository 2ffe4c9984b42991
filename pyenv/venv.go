package pyenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Scheme is where a wheel's parts go in a venv (PEP 427 install schemes).
type Scheme struct {
	Purelib string
	Platlib string
	Scripts string
	// Headers holds one folder per distribution, as pip lays it out:
	// Headers/<name>/.
	Headers string
	Data    string
}

// Venv is a virtual environment created by CreateVenv.
type Venv struct {
	Dir    string
	Python string // Dir/bin/python
	Interp *Interpreter
	Scheme Scheme
}

// VenvScheme returns the install scheme of a venv for it at dir, the
// sysconfig "venv" scheme that it would report from inside the venv.
func (it *Interpreter) VenvScheme(dir string) Scheme {
	py := "python" + it.Minor
	return Scheme{
		Purelib: filepath.Join(dir, "lib", py, "site-packages"),
		Platlib: filepath.Join(dir, it.platLibDir(), py, "site-packages"),
		Scripts: filepath.Join(dir, "bin"),
		Headers: filepath.Join(dir, "include", "site", py),
		Data:    dir,
	}
}

func (it *Interpreter) platLibDir() string {
	if it.PlatLibDir == "" {
		return "lib"
	}
	return it.PlatLibDir
}

var versionRE = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+`)

// CreateVenv creates a venv for it at dir, laid out as `python -m venv
// --without-pip` would: pyvenv.cfg, bin/python links, site-packages, and
// the lib64 link on 64-bit builds. It is built under a ".partial-" name
// beside dir and renamed into place, so dir either does not exist or is
// complete. dir must not exist yet.
func CreateVenv(dir string, it *Interpreter) (*Venv, error) {
	v, err := createVenv(dir, it)
	if err != nil {
		return nil, fmt.Errorf("create venv %q: %w", dir, err)
	}
	return v, nil
}

func createVenv(dir string, it *Interpreter) (*Venv, error) {
	if it == nil {
		return nil, errors.New("no interpreter given")
	}
	if !minorRE.MatchString(it.Minor) {
		return nil, fmt.Errorf("interpreter minor version %q is not like \"3.13\"", it.Minor)
	}
	version := versionRE.FindString(it.Version)
	if version == "" {
		return nil, fmt.Errorf("interpreter version %q does not start with X.Y.Z", it.Version)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	exe := it.Path
	if it.InVenv() {
		exe = it.BaseExecutable
	}
	// pyvenv.cfg is line-based: a newline in a value would add a key.
	for _, s := range []string{abs, exe, it.Path, it.RealPath} {
		if strings.ContainsAny(s, "\n\r") {
			return nil, fmt.Errorf("path %q contains a line break; pyvenv.cfg cannot hold it", s)
		}
	}
	if !filepath.IsAbs(exe) || !filepath.IsAbs(it.RealPath) {
		return nil, fmt.Errorf("interpreter paths %q and %q must be absolute", exe, it.RealPath)
	}
	if _, err := os.Lstat(abs); err == nil {
		return nil, errors.New("already exists; remove it or choose a new directory")
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}

	tmp, err := os.MkdirTemp(filepath.Dir(abs), filepath.Base(abs)+".partial-")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	if err := layout(tmp, abs, exe, version, it); err != nil {
		return nil, err
	}
	// rename(2) would replace an empty directory made meanwhile; the
	// Lstat above makes that a narrow race, not a silent overwrite of work.
	if err := os.Rename(tmp, abs); err != nil {
		return nil, err
	}
	ok = true
	return &Venv{
		Dir:    abs,
		Python: filepath.Join(abs, "bin", "python"),
		Interp: it,
		Scheme: it.VenvScheme(abs),
	}, nil
}

// layout writes the venv's files into tmp, which will be renamed to final;
// every recorded path names final.
func layout(tmp, final, exe, version string, it *Interpreter) error {
	py := "python" + it.Minor
	for _, d := range []string{
		"bin",
		filepath.Join("include", py),
		filepath.Join("lib", py, "site-packages"),
	} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
			return err
		}
	}
	// venv makes lib64 on every 64-bit POSIX build but macOS, so that
	// a platlibdir of lib64 (Fedora) lands in the same site-packages.
	if it.PointerBits == 64 {
		if err := os.Symlink("lib", filepath.Join(tmp, "lib64")); err != nil {
			return err
		}
	}

	// Like venv: the executable's own name links to it, and the usual
	// names link to that one.
	bin := filepath.Join(tmp, "bin")
	primary := filepath.Base(exe)
	if err := os.Symlink(exe, filepath.Join(bin, primary)); err != nil {
		return err
	}
	for _, name := range []string{"python", "python3", py} {
		if name == primary {
			continue
		}
		if err := os.Symlink(primary, filepath.Join(bin, name)); err != nil {
			return err
		}
	}

	cfg := fmt.Sprintf("home = %s\ninclude-system-site-packages = false\nversion = %s\nexecutable = %s\ncommand = %s -m venv --without-pip %s\n",
		filepath.Dir(exe), version, it.RealPath, it.Path, final)
	if err := os.WriteFile(filepath.Join(tmp, "pyvenv.cfg"), []byte(cfg), 0o644); err != nil {
		return err
	}
	// Python 3.13's venv keeps the whole tree out of git.
	if minorAtLeast(it.Minor, 13) {
		const ignore = "# Created by venv; see https://docs.python.org/3/library/venv.html\n*\n"
		if err := os.WriteFile(filepath.Join(tmp, ".gitignore"), []byte(ignore), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// minorAtLeast reports whether minor ("3.13") is 3.n or later.
func minorAtLeast(minor string, n int) bool {
	var m int
	if _, err := fmt.Sscanf(minor, "3.%d", &m); err != nil {
		return false
	}
	return m >= n
}
