package install

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/progress"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// logRecorder is a progress.Reporter that keeps the log lines.
type logRecorder struct {
	progress.Nop
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) Log(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, msg)
}

func (r *logRecorder) find(sub string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// TestCacheDamageNeverReachesAGeneration builds the fixture, then flips a
// byte in each cache that feeds a build: the unpacked copy of Django's
// __init__.py, its cached bytecode and the downloaded gunicorn wheel. The
// built store path must not change (it shares no inode with the caches),
// and the next build must notice each damaged entry, say so, replace it,
// and produce the original content.
func TestCacheDamageNeverReachesAGeneration(t *testing.T) {
	testkit.NeedNetwork(t)
	it := testkit.HostPython(t)
	l := testkit.LockFixture(t, testkit.Target(it))
	layout := store.Layout{Root: t.TempDir()}
	t.Cleanup(func() { makeWritable(layout.Root) })
	ctx := context.Background()
	// The build's scratch (throwaway secrets included) is made inside the
	// root: a $TMPDIR that does not exist does not matter.
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "absent"))
	res, err := Build(ctx, Options{Lock: l, Layout: layout, Python: it.Path, AppSource: testkit.FixtureApp()})
	if err != nil {
		t.Fatal(err)
	}
	cache := layout.CacheDir()
	venvRel := func(venv, suffix string) string {
		t.Helper()
		m, err := filepath.Glob(filepath.Join(venv, "lib", "python3.*", "site-packages", suffix))
		if err != nil || len(m) != 1 {
			t.Fatalf("%s under %s: %v %v", suffix, venv, m, err)
		}
		rel, _ := filepath.Rel(venv, m[0])
		return filepath.ToSlash(rel)
	}
	venv := filepath.Join(res.Path, VenvDir)
	srcRel := venvRel(venv, "django/__init__.py")
	pycRel := venvRel(venv, "django/__pycache__/__init__.cpython-*.pyc")
	goodSrc := readFile(t, filepath.Join(venv, srcRel))
	goodPyc := readFile(t, filepath.Join(venv, pycRel))

	// The cache's copies of the two files.
	sum := sha256.Sum256(goodSrc)
	unpackedSrc, _ := filepath.Glob(filepath.Join(cache, unpackedDir, "*", "sha256-"+hex.EncodeToString(sum[:])))
	if len(unpackedSrc) != 1 {
		t.Fatalf("unpacked copies of django/__init__.py: %q, want 1", unpackedSrc)
	}
	// The file of a pyc in its cache entry; numbers follow the order in
	// which sources were compiled, so a rebuilt entry may number anew.
	findPyc := func() string {
		indexes, _ := filepath.Glob(filepath.Join(cache, pycDir, "*", pycIndex))
		for _, ix := range indexes {
			for n, line := range strings.Split(string(readFile(t, ix)), "\n") {
				if strings.HasSuffix(line, " "+pycRel) {
					return filepath.Join(filepath.Dir(ix), strconv.Itoa(n))
				}
			}
		}
		t.Fatalf("no bytecode cache entry lists %s", pycRel)
		return ""
	}
	cachedPyc := findPyc()
	gunicorn := ""
	for _, p := range l.Packages {
		if p.Name == "gunicorn" {
			gunicorn = filepath.Join(cache, "wheels-v1", p.Wheels[0].SHA256)
		}
	}
	goodWheel := readFile(t, gunicorn)

	for _, p := range []string{unpackedSrc[0], cachedPyc, gunicorn} {
		flipByte(t, p)
	}
	if got := readFile(t, filepath.Join(venv, srcRel)); !bytes.Equal(got, goodSrc) {
		t.Error("a byte flipped in the unpacked cache changed the built store path's django/__init__.py")
	}
	if got := readFile(t, filepath.Join(venv, pycRel)); !bytes.Equal(got, goodPyc) {
		t.Error("a byte flipped in the bytecode cache changed the built store path's pyc")
	}

	// A new store path (the venv-only one) from the same, damaged caches.
	rec := &logRecorder{}
	res2, err := Build(ctx, Options{Lock: l, Layout: layout, Python: it.Path, VenvOnly: true, Progress: rec})
	if err != nil {
		t.Fatalf("build from damaged caches: %v", err)
	}
	t.Logf("the build from damaged caches said:\n%s", strings.Join(rec.lines, "\n"))
	venv2 := filepath.Join(res2.Path, VenvDir)
	if got := readFile(t, filepath.Join(venv2, srcRel)); !bytes.Equal(got, goodSrc) {
		t.Error("the build from a damaged unpacked cache installed the damaged django/__init__.py")
	}
	if got := readFile(t, filepath.Join(venv2, pycRel)); !bytes.Equal(got, goodPyc) {
		t.Error("the build from a damaged bytecode cache installed the damaged pyc")
	}
	for _, want := range []string{
		"unpacked cache " + filepath.Dir(unpackedSrc[0]) + " of django-",
		"bytecode cache entry " + filepath.Dir(cachedPyc) + " is damaged",
		"the cached gunicorn-",
	} {
		if rec.find(want) == "" {
			t.Errorf("no message mentions %q; the build said:\n%s", want, strings.Join(rec.lines, "\n"))
		}
	}
	// Each damaged entry was replaced by a good one.
	if got := readFile(t, unpackedSrc[0]); !bytes.Equal(got, goodSrc) {
		t.Error("the unpacked cache still holds the damaged django/__init__.py")
	}
	if got := readFile(t, findPyc()); !bytes.Equal(got, goodPyc) {
		t.Error("the bytecode cache still holds the damaged pyc")
	}
	if got := readFile(t, gunicorn); !bytes.Equal(got, goodWheel) {
		t.Error("the download cache still holds the damaged gunicorn wheel")
	}
	for _, p := range []string{filepath.Join(venv2, srcRel), filepath.Join(venv2, pycRel)} {
		a, _ := os.Stat(p)
		for _, c := range []string{unpackedSrc[0], findPyc()} {
			if b, _ := os.Stat(c); a != nil && b != nil && os.SameFile(a, b) {
				t.Errorf("%s shares its inode with the cache's %s", p, c)
			}
		}
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// flipByte inverts the middle byte of the file at p, keeping its size.
func flipByte(t *testing.T, p string) {
	t.Helper()
	data := readFile(t, p)
	if len(data) == 0 {
		t.Fatalf("%s is empty", p)
	}
	data[len(data)/2] ^= 0xff
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}
