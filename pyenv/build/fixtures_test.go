package build

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
	"github.com/bitpoll-install/bitpoll-install/pyenv"
	"github.com/bitpoll-install/bitpoll-install/pyenv/wheel"
)

// member is one entry of a generated archive.
type member struct {
	name string
	body string
	link string // symlink target when kind is 'l', hard link target when 'h'
	kind byte   // 'f' file (default), 'd' directory, 'l' symlink, 'h' hard link
	exec bool
}

// tarGz returns a gzipped tar of ms.
func tarGz(t testing.TB, ms []member) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, m := range ms {
		h := &tar.Header{Name: m.name, Mode: 0o644, Format: tar.FormatPAX}
		if m.exec {
			h.Mode = 0o755
		}
		switch m.kind {
		case 'd':
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		case 'l':
			h.Typeflag, h.Linkname = tar.TypeSymlink, m.link
		case 'h':
			h.Typeflag, h.Linkname = tar.TypeLink, m.link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(m.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(m.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zipOf returns a zip archive of ms; hard links are not representable and
// are skipped.
func zipOf(t testing.TB, ms []member) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range ms {
		h := &zip.FileHeader{Name: m.name, Method: zip.Deflate}
		body := m.body
		switch m.kind {
		case 'd':
			h.Name = strings.TrimSuffix(m.name, "/") + "/"
			h.SetMode(0o755 | os.ModeDir)
			body = ""
		case 'l':
			h.SetMode(0o777 | os.ModeSymlink)
			body = m.link
		case 'h':
			continue
		default:
			h.SetMode(0o644)
			if m.exec {
				h.SetMode(0o755)
			}
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writeSdist writes a .tar.gz sdist with the files under top/ and returns
// its path and sha256.
func writeSdist(t testing.TB, dir, top string, files map[string]string) (string, string) {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	ms := []member{{name: top + "/", kind: 'd'}}
	for _, n := range names {
		ms = append(ms, member{name: top + "/" + n, body: files[n]})
	}
	data := tarGz(t, ms)
	path := filepath.Join(dir, top+".tar.gz")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
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
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	var record strings.Builder
	var ms []member
	for _, n := range names {
		sum := sha256.Sum256([]byte(all[n]))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", n, base64.RawURLEncoding.EncodeToString(sum[:]), len(all[n]))
		ms = append(ms, member{name: n, body: all[n]})
	}
	record.WriteString(di + "RECORD,,\n")
	ms = append(ms, member{name: di + "RECORD", body: record.String()})
	path := filepath.Join(dir, name+"-"+version+"-py3-none-any.whl")
	if err := os.WriteFile(path, zipOf(t, ms), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
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
