package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testarchive"
	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
	"github.com/bitpoll-install/bitpoll-install/pyenv"
	"github.com/bitpoll-install/bitpoll-install/pyenv/wheel"
)

// writeSdist writes a .tar.gz sdist with the files under top/ and returns
// its path and sha256.
func writeSdist(t testing.TB, dir, top string, files map[string]string) (string, string) {
	t.Helper()
	data := testarchive.TarGz(t, testarchive.Tree(top, files)...)
	path := testarchive.Write(t, filepath.Join(dir, top+".tar.gz"), data)
	sum := sha256.Sum256(data)
	return path, hex.EncodeToString(sum[:])
}

// pkgInfo is a minimal PKG-INFO.
func pkgInfo(name, version string) string {
	return fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\n", name, version)
}

// writeWheel writes a small valid pure-Python wheel with the given files
// and returns its path.
func writeWheel(t testing.TB, dir, name, version string, files map[string]string) string {
	t.Helper()
	di := name + "-" + version + ".dist-info/"
	all := map[string]string{
		di + "METADATA": pkgInfo(name, version),
		di + "WHEEL":    "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
	}
	for k, v := range files {
		all[k] = v
	}
	whl := testarchive.Wheel(t, strings.TrimSuffix(di, "/"), testarchive.Flat(all)...)
	return testarchive.Write(t, filepath.Join(dir, name+"-"+version+"-py3-none-any.whl"), whl)
}

// hostPython probes python3 on PATH, skipping the test under -short, when
// there is none, or when it does not use glibc, and returns it with its lock target.
func hostPython(t testing.TB) (*pyenv.Interpreter, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a Python build backend; skipped under -short")
	}
	path, err := exec.LookPath("python3")
	if err != nil {
		testenv.Skip(t, "python3 not found on PATH; install CPython 3 to run build tests")
	}
	it, err := pyenv.NewProber().Probe(context.Background(), path)
	if err != nil {
		testenv.Skipf(t, "python3 cannot be probed: %v", err)
	}
	if it.Libc != "glibc" || (it.Arch != "x86_64" && it.Arch != "aarch64") {
		testenv.Skipf(t, "python3 is %s; build tests need glibc on x86_64 or aarch64", it)
	}
	return it, "cp3" + strings.TrimPrefix(it.Minor, "3.") + "-" + it.Arch
}

// installAndImport installs whl into a fresh venv and returns what
// `python -c code` prints there.
func installAndImport(t testing.TB, it *pyenv.Interpreter, whl, code string) string {
	t.Helper()
	v, err := pyenv.CreateVenv(filepath.Join(t.TempDir(), "venv"), it)
	if err != nil {
		t.Fatal(err)
	}
	s := wheel.Scheme(v.Scheme)
	s.Headers = filepath.Join(s.Headers, "x")
	if _, err := wheel.Install(whl, s, wheel.Options{Python: v.Python}); err != nil {
		t.Fatalf("install built wheel: %v", err)
	}
	cmd := exec.Command(v.Python, "-I", "-c", code)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python -c %q in the venv: %v\n%s", code, err, out)
	}
	return strings.TrimSpace(string(out))
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
