package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/standalone"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// TestInstallFromBundle writes a bundle of the fixture app with one root's
// cache, then installs it into another root whose cache is empty: the
// build takes every file from the bundle (offline, it could fetch none),
// and generation 1 serves the locked tree. --from-bundle with --lock is a
// usage error.
func TestInstallFromBundle(t *testing.T) {
	e := newGenEnv(t)
	flags := e.version(testkit.FixtureApp(), "1.0.0")
	bundle := filepath.Join(t.TempDir(), "fixture.bundle")
	r := runCLI(t, append([]string{"--root", t.TempDir(), "bundle", "-o", bundle}, flags[:4]...)...)
	if r.code != exitOK || !strings.Contains(r.stdout, "wrote "+bundle) {
		t.Fatalf("bundle: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if fi, err := os.Stat(bundle); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("the bundle: %v", err)
	}
	r = e.must("install", "--from-bundle", bundle, "--python", e.python)
	if !strings.Contains(r.stderr+r.stdout, "opened the bundle") || !strings.Contains(r.stdout, "generation 1 is now current") {
		t.Errorf("install --from-bundle printed:\n%s\n%s", r.stdout, r.stderr)
	}
	if des, _ := os.ReadDir(os.TempDir()); len(des) > 0 {
		for _, de := range des {
			if strings.HasPrefix(de.Name(), "bitpoll-bundle-") {
				t.Errorf("the unpacked bundle %s is left in the temporary directory", de.Name())
			}
		}
	}
	r = e.cli("install", "--from-bundle", bundle, "--lock", flags[1])
	if r.code != exitUsage || !strings.Contains(r.stderr, "--from-bundle brings its own lock") {
		t.Errorf("--from-bundle with --lock: exit %d\n%s", r.code, r.stderr)
	}
}

// TestInstallFromBundleStandalone bundles a lock that pins a standalone
// interpreter (testkit.StandaloneArchive's, served over https), then shuts
// the server down and installs from the bundle into an empty root with
// --python standalone: the interpreter comes from the bundle too, and the
// generation runs on it.
func TestInstallFromBundleStandalone(t *testing.T) {
	testkit.NeedNetwork(t)
	build := testkit.StandaloneArchive(t, t.TempDir())
	data, err := os.ReadFile(build.Path)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(data) }))
	glibc, err := standalone.GetconfGlibc(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	l := testkit.LockFixture(t, build.Target, "gunicorn==27.0.1")
	// The size left out, as in the committed lock: the hash alone pins it.
	l.Interpreters = []lockfile.Interpreter{{
		Target: build.Target, Implementation: "cpython", Version: build.Version, Release: "20260814",
		URL: srv.URL + "/" + filepath.Base(build.Path), SHA256: hexSHA256(data), Glibc: glibc,
	}}
	lock := testkit.WriteLock(t, l)
	bundle := filepath.Join(t.TempDir(), "standalone.bundle")
	r := runTLS(t, srv, "--root", t.TempDir(), "bundle", "-o", bundle, "--lock", lock, "--app-source", testkit.FixtureApp())
	srv.Close()
	if r.code != exitOK {
		t.Fatalf("bundle: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	root := t.TempDir()
	r = runCLI(t, "--root", root, "install", "--from-bundle", bundle, "--python", "standalone")
	if r.code != exitOK {
		t.Fatalf("install --from-bundle --python standalone: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	st, err := store.Open(store.Layout{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	interp := standalone.Path(st, l.Interpreters[0])
	if _, err := os.Stat(standalone.Python(interp, l.Interpreters[0])); err != nil {
		t.Errorf("the standalone interpreter is not in the store: %v\n%s", err, r.stdout)
	}
	r = runCLI(t, "--root", root, "generations")
	if !strings.Contains(r.stdout, filepath.Base(interp)) {
		t.Errorf("generations:\n%s\nwant generation 1 on %s", r.stdout, filepath.Base(interp))
	}
}
