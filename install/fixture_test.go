package install

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/store"
	"github.com/bitpoll-install/bitpoll-install/treehash"
)

// TestInstallFixtureEndToEnd locks, builds and activates the fixture
// project with real PyPI wheels (serve's TestRunFixture serves it).
func TestInstallFixtureEndToEnd(t *testing.T) {
	testkit.NeedNetwork(t)
	it := testkit.HostPython(t)
	l := testkit.LockFixture(t, testkit.Target(it), "gunicorn==27.0.1", "whitenoise==6.12.0")
	layout := store.Layout{Root: t.TempDir()}
	ctx := context.Background()

	start := time.Now()
	res, err := Build(ctx, Options{Lock: l, Layout: layout, Python: it.Path, AppSource: testkit.FixtureApp()})
	if err != nil {
		t.Fatal(err)
	}
	cold := time.Since(start)
	if !res.Built || res.Project != "fixtureapp" {
		t.Fatalf("Build = %+v, want a new store path for project fixtureapp", res)
	}
	st, err := store.Open(layout)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Verify(res.Path); err != nil {
		t.Errorf("the store path does not verify: %v", err)
	}
	// The app in the store carries the shim; static files are collected
	// at build time.
	for _, rel := range []string{AppDir + "/manage.py", AppDir + "/fixtureapp/settings_local.py", StaticDir + "/polls/style.css"} {
		if _, err := os.Stat(filepath.Join(res.Path, rel)); err != nil {
			t.Errorf("the store path lacks %s: %v", rel, err)
		}
	}
	// WhiteNoise in the lock: each static file has its gzip variant.
	if _, err := os.Stat(filepath.Join(res.Path, StaticDir, "polls", "poll.js.gz")); err != nil {
		t.Errorf("no compressed variant of polls/poll.js: %v", err)
	}
	// The shim has its bytecode from the build: Python run as root would
	// otherwise write it into the sealed path.
	if pycs, _ := filepath.Glob(filepath.Join(res.Path, AppDir, "fixtureapp", "__pycache__", "settings_local.*.pyc")); len(pycs) != 1 {
		t.Errorf("the store path has %d compiled settings_local modules, want 1", len(pycs))
	}
	if _, err := os.Stat(filepath.Join(res.Path, VenvDir, "bin", "gunicorn")); err != nil {
		t.Errorf("the venv has no gunicorn launcher: %v", err)
	}

	gen, switched, err := store.Activate(ctx, layout, res.Path, store.Hooks{})
	if err != nil || !switched || gen.N != 1 {
		t.Fatalf("Activate = %+v, %v, %v; want generation 1, switched", gen, switched, err)
	}
	if target, err := os.Readlink(layout.Current()); err != nil || !strings.HasSuffix(target, "1") {
		t.Errorf("current -> %q (%v), want generations/1", target, err)
	}

	// What a killed build leaves half made in the cache goes with the
	// next build; the finished entries stay.
	cache := layout.CacheDir()
	leftovers := []string{
		filepath.Join(cache, unpackedDir, ".0123abcd.partial-42"),
		filepath.Join(cache, pycDir, ".0123abcd-ffff.partial-42"),
		filepath.Join(cache, ".named-42"),
	}
	for _, p := range leftovers {
		if err := os.MkdirAll(filepath.Join(p, "x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	entries := func() []string {
		var out []string
		for _, d := range []string{unpackedDir, pycDir} {
			ents, _ := os.ReadDir(filepath.Join(cache, d))
			for _, e := range ents {
				out = append(out, d+"/"+e.Name())
			}
		}
		return out
	}
	before := entries()

	// The same inputs reuse the store path.
	start = time.Now()
	again, err := Build(ctx, Options{Lock: l, Layout: layout, Python: it.Path, AppSource: testkit.FixtureApp()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cold build %v, reuse %v", cold, time.Since(start))
	if again.Built || again.Path != res.Path {
		t.Errorf("second Build = %+v, want the same path, not rebuilt", again)
	}
	for _, p := range leftovers {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s, left by a killed build, is still there after the next build", p)
		}
	}
	var kept []string
	for _, e := range before {
		if !strings.Contains(e, ".partial-") {
			kept = append(kept, e)
		}
	}
	if after := entries(); !slices.Equal(after, kept) || len(kept) == 0 {
		t.Errorf("cache entries after the next build = %q, want the finished ones %q", after, kept)
	}
	if _, switched, _ := store.Activate(ctx, layout, res.Path, store.Hooks{}); switched {
		t.Error("Activate of the current path made a new generation")
	}
}

// TestBuildRefusesWrongSource gives a source whose files differ from the
// locked tree: nothing may reach the store.
func TestBuildRefusesWrongSource(t *testing.T) {
	testkit.NeedNetwork(t)
	it := testkit.HostPython(t)
	l := testkit.LockFixture(t, testkit.Target(it))
	src := t.TempDir()
	if err := os.CopyFS(src, os.DirFS(testkit.FixtureApp())); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "manage.py"), []byte("# changed\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tree, err := treehash.GitTree(src)
	if err != nil {
		t.Fatal(err)
	}
	layout := store.Layout{Root: t.TempDir()}
	_, err = Build(context.Background(), Options{Lock: l, Layout: layout, Python: it.Path, AppSource: src})
	if err == nil || !strings.Contains(err.Error(), tree) || !strings.Contains(err.Error(), l.App.Tree) {
		t.Fatalf("Build with a modified source: %v, want an error naming both tree ids", err)
	}
	assertStoreEmpty(t, layout)
}

// TestOnlyBinaryRefusesSdist locks one package as an sdist entry: with
// OnlyBinary the build stops before it touches the store, and names the
// package and the way out.
func TestOnlyBinaryRefusesSdist(t *testing.T) {
	testkit.NeedNetwork(t)
	it := testkit.HostPython(t)
	l := testkit.LockFixture(t, testkit.Target(it))
	found := false
	for i := range l.Packages {
		if p := &l.Packages[i]; p.Name == "sqlparse" {
			p.Sdist = &lockfile.File{Name: "sqlparse-" + p.Version + ".tar.gz", URL: "https://files.invalid/sqlparse.tar.gz",
				Size: 1, SHA256: strings.Repeat("0", 64), UploadTime: p.Wheels[0].UploadTime}
			p.Wheels, found = nil, true
		}
	}
	if !found {
		t.Fatal("the fixture lock has no sqlparse to turn into an sdist entry")
	}
	layout := store.Layout{Root: t.TempDir()}
	_, err := Build(context.Background(), Options{Lock: l, Layout: layout, Python: it.Path, AppSource: testkit.FixtureApp(), OnlyBinary: true})
	if err == nil || !strings.Contains(err.Error(), "sqlparse") || !strings.Contains(err.Error(), "--only-binary") {
		t.Fatalf("Build with OnlyBinary over an sdist entry = %v, want a refusal naming sqlparse and --only-binary", err)
	}
	if _, err := os.Stat(layout.StoreDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused build created the store (%v), want nothing written", err)
	}
}
