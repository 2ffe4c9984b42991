package standalone

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/httpretry"
	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/layout"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// member is one member of a generated archive.
type member struct {
	name, body, link string
	dir              bool
	mode             int64
}

func tarGz(t *testing.T, ms []member) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, m := range ms {
		h := &tar.Header{Name: m.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(m.body))}
		switch {
		case m.dir:
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		case m.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, m.link, 0
		}
		if m.mode != 0 {
			h.Mode = m.mode
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
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// server serves files over TLS, as GitHub's release downloads are, and
// counts requests.
type server struct {
	*httptest.Server
	files    map[string][]byte
	requests atomic.Int64
}

func newServer(t *testing.T) *server {
	s := &server{files: map[string][]byte{}}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		b, ok := s.files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) put(name string, b []byte) string {
	s.files["/"+name] = b
	return s.URL + "/" + name
}

func entry(target, version, url string, body []byte) lockfile.Interpreter {
	return lockfile.Interpreter{
		Target: target, Implementation: "cpython", Version: version, Release: "20260814",
		URL: url, Size: int64(len(body)), SHA256: sum(body), Glibc: "2.17",
	}
}

func options(t *testing.T, s *server, root string) Options {
	l := layout.Layout{Root: root}
	st, err := store.Open(l)
	if err != nil {
		t.Fatal(err)
	}
	return Options{
		Store: st, CacheDir: l.CacheDir(), HTTPClient: s.Client(),
		HostGlibc: func(context.Context) (string, error) { return "2.36", nil }, Arch: "x86_64",
	}
}

// storeEntries lists the store directory, without its lock file.
func storeEntries(t *testing.T, root string) []string {
	t.Helper()
	des, err := os.ReadDir(layout.Layout{Root: root}.StoreDir())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range des {
		if d.Name() != ".lock" {
			names = append(names, d.Name())
		}
	}
	return names
}

// TestEnsureRefusesBadArchives: each bad archive is refused with an error
// that says what is wrong, and the store holds nothing afterwards, not
// even a .partial directory; the download cache holds no unverified file.
func TestEnsureRefusesBadArchives(t *testing.T) {
	good := []member{
		{name: "python/", dir: true},
		{name: "python/bin/", dir: true},
		{name: "python/bin/python3.13", body: "#!/bin/false\n", mode: 0o755},
		{name: "python/lib/python3.13/os.py", body: "# os\n"},
	}
	goodTar := tarGz(t, good)
	tests := []struct {
		name string
		// serve returns what the server sends and the entry's size and
		// sha256 (the lock's facts).
		serve func() (served []byte, size int64, sha string)
		want  func(err error) bool
		says  string
	}{
		{"tampered", func() ([]byte, int64, string) {
			b := bytes.Clone(goodTar)
			b[len(b)/2] ^= 0xff
			return b, int64(len(goodTar)), sum(goodTar)
		}, func(err error) bool { var he *httpretry.HashError; return errors.As(err, &he) }, "the file at the URL is not the locked one"},
		{"tampered, size unknown", func() ([]byte, int64, string) {
			b := bytes.Clone(goodTar)
			b[len(b)/2] ^= 0xff
			return b, 0, sum(goodTar)
		}, func(err error) bool { var he *httpretry.HashError; return errors.As(err, &he) }, "sha256"},
		{"truncated", func() ([]byte, int64, string) {
			return goodTar[:len(goodTar)/2], int64(len(goodTar)), sum(goodTar)
		}, func(err error) bool { var se *httpretry.SizeError; return errors.As(err, &se) }, "bytes"},
		{"truncated, size unknown", func() ([]byte, int64, string) {
			return goodTar[:len(goodTar)/2], 0, sum(goodTar)
		}, func(err error) bool { var he *httpretry.HashError; return errors.As(err, &he) }, "sha256"},
		// From here on the lock pins exactly what is served: the hash is
		// right, and the content itself is refused.
		{"path escaping", pinned(tarGz(t, append(slices.Clone(good), member{name: "python/../../evil", body: "x"}))),
			isBad, "python/../../evil"},
		{"absolute path", pinned(tarGz(t, append(slices.Clone(good), member{name: "/etc/evil", body: "x"}))),
			isBad, "/etc/evil"},
		{"symlink escaping", pinned(tarGz(t, append(slices.Clone(good), member{name: "python/lib/python3.13/site", link: "../../../../etc"}))),
			isBad, "python/lib/python3.13/site"},
		{"absolute symlink", pinned(tarGz(t, append(slices.Clone(good), member{name: "python/lib/python3.13/sitecustomize.py", link: "/etc/python3/sitecustomize.py"}))),
			isBad, "sitecustomize.py"},
		{"write through a symlink", pinned(tarGz(t, append(slices.Clone(good), member{name: "python/share", link: "lib"}, member{name: "python/share/x", body: "x"}))),
			isBad, "python/share/x"},
		{"two top directories", pinned(tarGz(t, append(slices.Clone(good), member{name: "other/x", body: "x"}))),
			isBad, "other/x"},
		{"no interpreter", pinned(tarGz(t, []member{{name: "python/lib/python3.13/os.py", body: "# os\n"}})),
			isBad, "python/bin/python3.13"},
		{"not an archive", pinned([]byte("<html>not found</html>")), func(err error) bool { return err != nil }, "neither a .zip nor a .tar"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			served, size, sha := tt.serve()
			e := entry("cp313-x86_64", "3.13.15", s.put("cpython-3.13.15.tar.gz", served), served)
			e.Size, e.SHA256 = size, sha
			root := t.TempDir()
			o := options(t, s, root)
			_, err := Ensure(context.Background(), e, o)
			if err == nil || !tt.want(err) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("Ensure() = %v, want a refusal saying %q", err, tt.says)
			}
			if got := storeEntries(t, root); len(got) != 0 {
				t.Errorf("the store holds %q after the refusal, want nothing", got)
			}
			cache, _ := os.ReadDir(filepath.Join(o.CacheDir, "wheels-v1"))
			for _, c := range cache {
				if c.Name() != sha || sum(served) != sha {
					t.Errorf("the download cache holds %q, which is not a verified file", c.Name())
				}
			}
		})
	}
}

func pinned(b []byte) func() ([]byte, int64, string) {
	return func() ([]byte, int64, string) { return b, int64(len(b)), sum(b) }
}

func isBad(err error) bool { return errors.Is(err, ErrBadArchive) }

// TestCheckHost: an interpreter for another architecture, or one that
// needs a newer glibc than the host has, is refused before anything is
// fetched.
func TestCheckHost(t *testing.T) {
	s := newServer(t)
	body := []byte("never fetched")
	e := entry("cp313-aarch64", "3.13.15", s.put("x.tar.gz", body), body)
	root := t.TempDir()
	o := options(t, s, root)
	if _, err := Ensure(context.Background(), e, o); err == nil || !strings.Contains(err.Error(), "built for aarch64, and this host is x86_64") {
		t.Errorf("Ensure(aarch64 on x86_64) = %v, want an architecture refusal", err)
	}
	e.Target = "cp313-x86_64"
	e.Glibc = "2.39"
	if _, err := Ensure(context.Background(), e, o); err == nil || !strings.Contains(err.Error(), "needs glibc 2.39 or newer, and this host has glibc 2.36") {
		t.Errorf("Ensure(glibc 2.39 on 2.36) = %v, want a glibc refusal", err)
	}
	if n := s.requests.Load(); n != 0 {
		t.Errorf("%d requests, want none before the host is checked", n)
	}
	if got := storeEntries(t, root); len(got) != 0 {
		t.Errorf("the store holds %q, want nothing", got)
	}
}

// TestEnsureReal installs a real interpreter served over TLS and runs it
// from the store. The archive is made by testkit.StandaloneArchive from
// the host's own CPython (/usr/bin/python3.X and /usr/lib/python3.X
// copied into python-build-standalone's python/bin, python/lib layout),
// which finds its prefix from where its executable lies.
func TestEnsureReal(t *testing.T) {
	if testing.Short() {
		t.Skip("unpacks and compiles a whole standard library")
	}
	build := testkit.StandaloneArchive(t, t.TempDir())
	data, err := os.ReadFile(build.Path)
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t)
	e := entry(build.Target, build.Version, s.put(filepath.Base(build.Path), data), data)
	root := t.TempDir()
	o := options(t, s, root)
	o.Arch = build.Arch
	host, err := GetconfGlibc(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	o.HostGlibc = nil // the real getconf
	e.Glibc = host
	start := time.Now()
	got, err := Ensure(context.Background(), e, o)
	if err != nil {
		t.Fatalf("Ensure() = %v", err)
	}
	t.Logf("fetched, unpacked, checked and compiled a %d-byte archive of CPython %s in %v", build.Size, build.Version, time.Since(start))
	if !got.Built || got.Path != Path(o.Store, e) {
		t.Errorf("Ensure() = %+v, want built at %s", got, Path(o.Store, e))
	}
	if err := o.Store.Verify(got.Path); err != nil {
		t.Errorf("the interpreter's store path is not a sealed store path: %v", err)
	}
	out, err := exec.Command(got.Python, "-I", "-c", "import sys, json, ssl, sqlite3; print(sys.prefix); print(sys.version.split()[0])").CombinedOutput()
	if err != nil {
		t.Fatalf("run %s: %v\n%s", got.Python, err, out)
	}
	want := filepath.Join(got.Path, TopDir) + "\n" + build.Version + "\n"
	if string(out) != want {
		t.Errorf("the store's interpreter prints %q, want its prefix in the store and its version %q", out, want)
	}
	// Its bytecode is there, so no run writes into the sealed tree.
	if pyc, _ := filepath.Glob(filepath.Join(got.Path, TopDir, "lib", "python"+build.Minor, "__pycache__", "os.*.pyc")); len(pyc) != 1 {
		t.Errorf("os.py has bytecode %q, want one pyc", pyc)
	}
	// A second Ensure reuses it: no request, not built.
	before := s.requests.Load()
	again, err := Ensure(context.Background(), e, o)
	if err != nil || again.Built || again.Path != got.Path {
		t.Errorf("second Ensure() = %+v, %v; want the same path, not built", again, err)
	}
	if n := s.requests.Load() - before; n != 0 {
		t.Errorf("second Ensure made %d requests, want none", n)
	}
	// Another pin (another version named for the same archive) is refused
	// when the interpreter says otherwise, and leaves nothing.
	lie := e
	lie.Version = build.Minor + ".99"
	if _, err := Ensure(context.Background(), lie, o); err == nil || !strings.Contains(err.Error(), "not the cpython "+lie.Version) {
		t.Errorf("Ensure(entry naming another version) = %v, want a refusal", err)
	}
	if got := storeEntries(t, root); len(got) != 1 {
		t.Errorf("store holds %q, want only the first interpreter", got)
	}
}
