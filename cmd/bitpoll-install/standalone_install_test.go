package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/standalone"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// TestInstallStandaloneGenerations installs the fixture app with --root:
// generation 1 on the host's CPython, generation 2 on the standalone
// interpreter the lock pins (served over https; the migrations and the
// health gate run on it), generation 3 on the host's CPython again, as
// another app version. generations shows which interpreter each runs on,
// in text and JSON, and gc, which drops generation 1, keeps the
// interpreter that generation 2 (the previous one) runs on. The archive
// is testkit.StandaloneArchive's: the host's /usr/bin/python3.X and
// /usr/lib/python3.X in python-build-standalone's layout.
func TestInstallStandaloneGenerations(t *testing.T) {
	testkit.NeedNetwork(t)
	build := testkit.StandaloneArchive(t, t.TempDir())
	data, err := os.ReadFile(build.Path)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(data) }))
	defer srv.Close()
	glibc, err := standalone.GetconfGlibc(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pin := func(l *lockfile.Lock) string {
		l.Interpreters = []lockfile.Interpreter{{
			Target: build.Target, Implementation: "cpython", Version: build.Version, Release: "20260814",
			URL: srv.URL + "/" + filepath.Base(build.Path), Size: build.Size, SHA256: hexSHA256(data), Glibc: glibc,
		}}
		return testkit.WriteLock(t, l)
	}
	hostPython := "/usr/bin/python" + build.Minor
	lock1 := pin(testkit.LockFixture(t, build.Target, "gunicorn==27.0.1"))
	v2 := testkit.FixtureVariant(t, false)
	lock2 := pin(testkit.LockFixtureTree(t, v2, "1.0.1", build.Target, "gunicorn==27.0.1"))
	root := t.TempDir()
	install := func(lock, src, python string) {
		t.Helper()
		r := runTLS(t, srv, "--root", root, "install", "--lock", lock, "--app-source", src, "--python", python)
		if r.code != exitOK {
			t.Fatalf("install --python %s = %d\nstdout:\n%s\nstderr:\n%s", python, r.code, r.stdout, r.stderr)
		}
	}
	install(lock1, testkit.FixtureApp(), hostPython)
	install(lock1, testkit.FixtureApp(), "standalone")
	install(lock2, v2, hostPython)

	st, err := store.Open(store.Layout{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	l1, err := lockfile.ReadFile(lock1)
	if err != nil {
		t.Fatal(err)
	}
	interp := standalone.Path(st, l1.Interpreters[0])
	r := runTLS(t, srv, "--root", root, "generations")
	lines := strings.Split(r.stdout, "\n")
	if r.code != exitOK || len(lines) < 4 || !strings.Contains(lines[0], "PYTHON") ||
		!strings.Contains(lines[1], build.Version+" "+hostPython) || !strings.Contains(lines[2], build.Version+" "+filepath.Base(interp)) ||
		!strings.Contains(lines[3], build.Version+" "+hostPython) {
		t.Errorf("generations = %d\n%s\nwant a PYTHON column: generation 2 on %s, 1 and 3 on %s", r.code, r.stdout, filepath.Base(interp), hostPython)
	}
	r = runTLS(t, srv, "--root", root, "--json", "generations")
	var paths []*string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var rec struct {
			Generation struct {
				InterpreterPath *string `json:"interpreter_path"`
			} `json:"generation"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("generations --json line %q: %v", line, err)
		}
		paths = append(paths, rec.Generation.InterpreterPath)
	}
	if len(paths) != 3 || paths[0] != nil || paths[1] == nil || *paths[1] != interp || paths[2] != nil {
		t.Errorf("generations --json interpreter_path = %v, want null, %q, null", paths, interp)
	}

	r = runTLS(t, srv, "--root", root, "gc", "--keep", "0")
	if r.code != exitOK || !strings.Contains(r.stdout, "removed generation 1") {
		t.Fatalf("gc --keep 0 = %d\n%s%s\nwant generation 1 removed", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, interp) {
		t.Errorf("gc removed %s, which generation 2 runs on:\n%s", interp, r.stdout)
	}
	if err := st.Verify(interp); err != nil {
		t.Errorf("after gc, the interpreter of generation 2 is not intact: %v", err)
	}
	gen2, err := st.ReadMeta(2)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(gen2.StorePath, "venv", "bin", "python"), "-c", "import django, sys; print(sys.base_prefix)").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != filepath.Join(interp, standalone.TopDir) {
		t.Errorf("generation 2's venv after gc: %q, %v; want it running on %s", out, err, interp)
	}
}
