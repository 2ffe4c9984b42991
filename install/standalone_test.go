package install

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/standalone"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// TestBuildOnStandaloneInterpreter builds the fixture app's venv on a
// standalone interpreter the lock pins, served over https like a
// python-build-standalone release. The archive is real: the host's own
// CPython (/usr/bin/python3.X and its standard library /usr/lib/python3.X)
// copied into python-build-standalone's layout, python/bin/python3.X and
// python/lib/python3.X, by testkit.StandaloneArchive; CPython finds its
// prefix from its executable's place, so it runs from the store. The lock
// is the fixture app locked for that interpreter's target against real
// PyPI, with the archive's sha256 and size.
func TestBuildOnStandaloneInterpreter(t *testing.T) {
	testkit.NeedNetwork(t)
	build := testkit.StandaloneArchive(t, t.TempDir())
	data, err := os.ReadFile(build.Path)
	if err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Write(data)
	}))
	defer srv.Close()
	glibc, err := standalone.GetconfGlibc(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	l := testkit.LockFixture(t, build.Target, "gunicorn==27.0.1")
	l.Interpreters = []lockfile.Interpreter{{
		Target: build.Target, Implementation: "cpython", Version: build.Version, Release: "20260814",
		URL: srv.URL + "/" + filepath.Base(build.Path), Size: build.Size, SHA256: hex.EncodeToString(sum[:]), Glibc: glibc,
	}}
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
	// A host with no Python on PATH, nor in pyenv's or uv's places, for
	// every build here, so that --python auto finds none; the tools a
	// build looks up are kept.
	bin := t.TempDir()
	for _, tool := range []string{"getconf", "msgfmt"} {
		if p, err := exec.LookPath(tool); err == nil {
			if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Setenv("PATH", bin)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("PYENV_ROOT", "")
	t.Setenv("UV_PYTHON_INSTALL_DIR", "")
	t.Setenv("XDG_DATA_HOME", "")
	layout := store.Layout{Root: t.TempDir()}
	ctx := context.Background()
	rec := &logRecorder{}
	res, err := Build(ctx, Options{Lock: l, Layout: layout, Python: PythonStandalone, AppSource: testkit.FixtureApp(), HTTPClient: srv.Client(), Progress: rec})
	if err != nil {
		t.Fatalf("Build(--python standalone) = %v", err)
	}
	st, err := store.Open(layout)
	if err != nil {
		t.Fatal(err)
	}
	interpPath := standalone.Path(st, l.Interpreters[0])
	if res.Standalone == nil || res.Standalone.Path != interpPath || !res.Built {
		t.Fatalf("Build = %+v, want a new store path on the interpreter at %s", res, interpPath)
	}
	if !strings.HasPrefix(res.Interp.RealPath, interpPath+"/") {
		t.Errorf("the build's interpreter is %s, want one inside %s", res.Interp.RealPath, interpPath)
	}
	for _, p := range []string{interpPath, res.Path} {
		if err := st.Verify(p); err != nil {
			t.Errorf("store path %s does not verify: %v", p, err)
		}
	}
	// The venv runs on the store's interpreter, and imports the locked
	// wheels.
	py := filepath.Join(res.Path, VenvDir, "bin", "python")
	out, err := exec.Command(py, "-c", "import sys, django, gunicorn; print(sys.base_prefix); print(django.get_version())").CombinedOutput()
	if err != nil {
		t.Fatalf("run the venv's python: %v\n%s", err, out)
	}
	if want := filepath.Join(interpPath, standalone.TopDir) + "\n5.2.19\n"; string(out) != want {
		t.Errorf("the venv's python prints %q, want its base prefix in the interpreter's store path and Django 5.2.19: %q", out, want)
	}
	cfg, err := os.ReadFile(filepath.Join(res.Path, VenvDir, "pyvenv.cfg"))
	if err != nil || !strings.Contains(string(cfg), interpPath) {
		t.Errorf("pyvenv.cfg = %q, %v; want it to name the interpreter's store path", cfg, err)
	}

	// The store key holds the interpreter: the host's own CPython of the
	// same version makes another store path.
	host, err := Build(ctx, Options{Lock: l, Layout: layout, Python: "/usr/bin/python" + build.Minor, AppSource: testkit.FixtureApp()})
	if err != nil {
		t.Fatalf("Build(--python /usr/bin/python%s) = %v", build.Minor, err)
	}
	if host.Path == res.Path || host.Standalone != nil {
		t.Errorf("the host's Python built %s (standalone %v), want a store path of its own", host.Path, host.Standalone)
	}

	// auto, on this host without a Python that fits: the lock's pinned
	// interpreter, already in the store: the same path, nothing fetched
	// again.
	before := requests.Load()
	rec = &logRecorder{}
	auto, err := Build(ctx, Options{Lock: l, Layout: layout, Python: PythonAuto, AppSource: testkit.FixtureApp(), HTTPClient: srv.Client(), Progress: rec})
	if err != nil {
		t.Fatalf("Build(--python auto) with no host Python = %v", err)
	}
	if auto.Path != res.Path || auto.Built {
		t.Errorf("Build(auto) = %s (built %v), want %s reused", auto.Path, auto.Built, res.Path)
	}
	if n := requests.Load() - before; n != 0 {
		t.Errorf("Build(auto) made %d requests, want none (the interpreter is in the store)", n)
	}
	if !strings.Contains(strings.Join(rec.lines, "\n"), "no Python on this host fits the lock; using the lock's pinned CPython "+build.Version) {
		t.Errorf("Build(auto) logged %q, want it to say it uses the pinned interpreter", rec.lines)
	}

	// Without a pin, auto says how to get one.
	l.Interpreters = nil
	_, err = Build(ctx, Options{Lock: l, Layout: layout, Python: PythonAuto, AppSource: testkit.FixtureApp()})
	if err == nil || !strings.Contains(err.Error(), "re-lock with --python-standalone") {
		t.Errorf("Build(auto) with no Python and no pin = %v, want a hint to re-lock with --python-standalone", err)
	}
}

// TestStandaloneNotPinned: --python standalone with a lock that pins
// no interpreter is refused before the store is made.
func TestStandaloneNotPinned(t *testing.T) {
	l := &lockfile.Lock{Glibc: "2.28", Targets: []string{"cp313-" + standalone.HostArch()}}
	layout := store.Layout{Root: t.TempDir()}
	_, err := Build(context.Background(), Options{Lock: l, Layout: layout, Python: PythonStandalone})
	if err == nil || !strings.Contains(err.Error(), "--python standalone: the lock pins no standalone interpreter: re-lock with --python-standalone") {
		t.Errorf("Build(--python standalone, no pin) = %v, want a refusal that says to re-lock", err)
	}
	if _, err := os.Stat(layout.StoreDir()); err == nil {
		t.Errorf("the refusal made the store %s", layout.StoreDir())
	}
}
