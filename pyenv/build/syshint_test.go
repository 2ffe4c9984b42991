package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func osRelease(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "os-release")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSystemHint: the output of a build that lacks a compiler or header
// gives the package to install on the host's distribution, or on each
// known family when the host's is unknown; a compiler that runs and
// fails gives none.
func TestSystemHint(t *testing.T) {
	debian := osRelease(t, "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n")
	ubuntu := osRelease(t, "ID=ubuntu\nID_LIKE=debian\n")
	rocky := osRelease(t, "ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n")
	unknown := osRelease(t, "ID=plan9\n")
	tests := []struct {
		name, output, osRelease string
		want                    []string // all in the hint; none: no hint
	}{
		{"setuptools, no g++", "building '_sass' extension\nerror: command 'g++' failed: No such file or directory\n", debian,
			[]string{"a C++ compiler", "`apt-get install g++` (Debian, Ubuntu)"}},
		{"a cross-named c++ on Ubuntu", "error: command 'x86_64-linux-gnu-g++' failed: No such file or directory", ubuntu,
			[]string{"`apt-get install g++`"}},
		{"CXX names a path", "error: command '/opt/none/c++' failed: No such file or directory", rocky,
			[]string{"`dnf install gcc-c++` (RHEL"}},
		{"distutils, no gcc", "unable to execute 'gcc': No such file or directory", rocky,
			[]string{"a C compiler", "`dnf install gcc`"}},
		{"a shell without cc", "sh: 1: cc: not found", debian, []string{"`apt-get install gcc`"}},
		{"no Python.h", "src/mod.c:1:10: fatal error: Python.h: No such file or directory", debian,
			[]string{"the Python headers", "`apt-get install python3-dev`"}},
		{"another header", "fatal error: ffi.h: No such file or directory", rocky,
			[]string{"the header ffi.h", "dnf provides '*/ffi.h'"}},
		{"an unknown distribution", "error: command 'g++' failed: No such file or directory", unknown,
			[]string{"`apt-get install g++` (Debian, Ubuntu)", "`dnf install gcc-c++`", "`zypper install gcc-c++`", "`pacman -S gcc`"}},
		{"no os-release", "error: command 'gcc' failed: No such file or directory", filepath.Join(t.TempDir(), "none"),
			[]string{"`apt-get install gcc`", "`dnf install gcc`"}},
		{"a compile error", "error: command '/usr/bin/g++' failed with exit code 1", debian, nil},
		{"a Python error", "ModuleNotFoundError: No module named 'cython'", debian, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := systemHint(tt.output, tt.osRelease)
			if tt.want == nil {
				if got != "" {
					t.Errorf("systemHint = %q, want none", got)
				}
				return
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("systemHint = %q, want %q in it", got, w)
				}
			}
		})
	}
}

// TestBuildWheelNoCompiler builds a C++ extension with setuptools from
// PyPI while CXX names a compiler that is not there, as on a host
// without g++ (libsass's sdist on aarch64): the error names the package
// that brings one, for the distribution the os-release file names.
func TestBuildWheelNoCompiler(t *testing.T) {
	if testing.Short() {
		t.Skip("builds with setuptools from PyPI; skipped under -short")
	}
	it, target := hostPython(t)
	setuptools := setuptoolsFromPyPI(t)
	dir := t.TempDir()
	sdist, sum := writeSdist(t, dir, "cxx_mod-0.1", map[string]string{
		"PKG-INFO": pkgInfo("cxx-mod", "0.1"),
		"setup.py": "from setuptools import setup, Extension\n" +
			"setup(name='cxx-mod', version='0.1', ext_modules=[Extension('cxx_mod', ['cxx_mod.cpp'], language='c++')])\n",
		"cxx_mod.cpp": "#include <Python.h>\nstatic struct PyModuleDef m = {PyModuleDef_HEAD_INIT, \"cxx_mod\"};\nPyMODINIT_FUNC PyInit_cxx_mod(void) { return PyModule_Create(&m); }\n",
	})
	missing := filepath.Join(t.TempDir(), "no-such-dir", "g++")
	t.Setenv("CC", missing)
	t.Setenv("CXX", missing)
	o := Options{Interp: it, BuildWheels: []string{setuptools}, CacheDir: filepath.Join(dir, "cache"), Target: target,
		OSRelease: osRelease(t, "ID=debian\n")}
	_, err := BuildWheel(context.Background(), sdist, sum, o)
	var he *HookError
	if !errors.As(err, &he) || !strings.Contains(err.Error(), "the build needs a C++ compiler, which this host lacks: `apt-get install g++` (Debian, Ubuntu)") {
		t.Fatalf("BuildWheel without a compiler = %v, want a hook error that names apt-get install g++", err)
	}
}
