package serve

import (
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/pyenv"
	"github.com/bitpoll-install/bitpoll-install/service"
	"github.com/bitpoll-install/bitpoll-install/shim"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// These tests install real Bitpoll releases from a local git mirror of its
// repository with real PyPI wheels, then check the result the way an admin
// would: Django's deploy checks, a served front page, and a poll created
// through the real form.

// deployAllowed are the deploy-check IDs accepted, with the reason for
// each. It is empty on purpose: with an https base URL the shim turns on
// secure cookies, HSTS and the other hardening Django's deploy checks ask
// for, so any finding is a regression of the shim or of the app.
var deployAllowed = map[string]string{}

var checkID = regexp.MustCompile(`\(([a-z_.]+\.([EWC])\d+)\)`)

// checkDeploy runs `manage.py check --deploy` on the store path with a
// production-like https configuration and fails on any error and on any
// warning outside deployAllowed.
func checkDeploy(ctx context.Context, t *testing.T, res *install.Result) {
	t.Helper()
	tmp := t.TempDir()
	secrets := filepath.Join(tmp, "secrets")
	if err := service.WriteSecrets(secrets); err != nil {
		t.Fatal(err)
	}
	env, err := install.ManagementEnv(shim.Settings{
		BaseURL:      "https://bitpoll.example",
		AllowedHosts: []string{"bitpoll.example"},
		Database:     shim.Database{Engine: "sqlite", Path: filepath.Join(tmp, "db.sqlite3")},
		StaticRoot:   filepath.Join(res.Path, install.StaticDir),
		MediaRoot:    filepath.Join(tmp, "media"),
	}, tmp, secrets)
	if err != nil {
		t.Fatalf("ManagementEnv = %v, want an environment", err)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(res.Path, install.VenvDir, "bin", "python"), "manage.py", "check", "--deploy")
	cmd.Dir = filepath.Join(res.Path, install.AppDir)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("manage.py check --deploy = %v, want success; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "System check identified") {
		t.Fatalf("manage.py check --deploy printed no summary, want \"System check identified ...\"; output:\n%s", out)
	}
	var seen, bad []string
	for _, m := range checkID.FindAllStringSubmatch(string(out), -1) {
		seen = append(seen, m[1])
		if _, ok := deployAllowed[m[1]]; !ok || m[2] == "E" || m[2] == "C" {
			bad = append(bad, m[1])
		}
	}
	if len(bad) > 0 {
		t.Errorf("manage.py check --deploy reported %q, want none outside %v; output:\n%s", bad, allowedIDs(), out)
	}
	t.Logf("manage.py check --deploy: %d findings %q, all allowed", len(seen), seen)
}

func allowedIDs() []string {
	var out []string
	for k := range deployAllowed {
		out = append(out, k)
	}
	return out
}

// TestRealBitpoll installs real Bitpoll releases, serves them with
// gunicorn and uses them. The cases share one layout root, so the wheel
// cache and the unpacked wheels are shared too.
func TestRealBitpoll(t *testing.T) {
	mirror := testkit.BitpollMirror(t)
	idx := testkit.RealIndex(t)
	layout := store.Layout{Root: t.TempDir()}
	cases := []struct {
		ref     string
		version string // recorded in the lock: a PEP 440 version
		python  string // CPython minor version
	}{
		{"0.11.0", "0.11.0", "3.13"},
		{"0.10.0", "0.10.0", "3.11"}, // 0.10.0 needs Python <= 3.12
		// master has no release number; a local label keeps it apart
		// from 0.11.0 in the store.
		{"master", "0.11.0+master", "3.13"},
	}
	for _, c := range cases {
		t.Run(c.ref+"/py"+c.python, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
			defer cancel()
			interp, err := pyenv.Find(ctx, []pyenv.Want{{Version: c.python}}, pyenv.FindOptions{})
			if err != nil {
				testenv.Skipf(t, "no Python %s found (%v): install it, with pyenv for instance, to run this case", c.python, err)
			}
			dir := testkit.ExportRelease(ctx, t, mirror, c.ref)
			lock := testkit.LockTree(ctx, t, idx, dir, c.version, testkit.Target(interp))
			opts := install.Options{Lock: lock, Layout: layout, AppSource: dir, Python: interp.Path}

			start := time.Now()
			res, err := install.Build(ctx, opts)
			if err != nil {
				t.Fatalf("Build(%s on %s) = %v, want a store path", c.ref, interp, err)
			}
			cold := time.Since(start)
			if !res.Built {
				t.Errorf("Build(%s on %s).Built = false on the first build, want true", c.ref, interp)
			}

			start = time.Now()
			again, err := install.Build(ctx, opts)
			if err != nil {
				t.Fatalf("second Build(%s on %s) = %v, want the same store path", c.ref, interp, err)
			}
			warm := time.Since(start)
			t.Logf("%s on %s: first build %v, second %v", c.ref, interp, cold.Round(time.Millisecond), warm.Round(time.Millisecond))
			if again.Built || again.Path != res.Path {
				t.Errorf("second Build = (%s, Built %v), want (%s, Built false)", again.Path, again.Built, res.Path)
			}

			checkDeploy(ctx, t, res)
			serveAndUse(ctx, t, res, c.ref)
		})
	}
}

// serveAndUse serves res, checks the front page and creates a poll, then
// stops the server and expects a graceful exit.
func serveAndUse(ctx context.Context, t *testing.T, res *install.Result, ref string) {
	t.Helper()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	state := t.TempDir()
	var logs testkit.SyncBuffer
	ready := make(chan string, 1)
	served := make(chan error, 1)
	port := testkit.FreePort(t)
	go func() {
		served <- Run(ctx, res, Options{
			Port:     port,
			StateDir: state,
			Secrets:  filepath.Join(state, "secrets"),
			Workers:  2,
			Stdout:   &logs,
			Stderr:   &logs,
			Ready:    func(u string) { ready <- u },
		})
	}()
	var base string
	select {
	case u := <-ready:
		base = strings.TrimSuffix(u, "/")
	case err := <-served:
		t.Fatalf("Serve ended before it was ready: %v; output:\n%s", err, logs.String())
	case <-time.After(3 * time.Minute):
		t.Fatalf("Serve was not ready within 3 minutes; output:\n%s", logs.String())
	}
	status, _ := testkit.FetchPage(t, &http.Client{Timeout: 30 * time.Second}, base+"/")
	if status != http.StatusOK {
		t.Errorf("GET / = %d, want 200; output:\n%s", status, logs.String())
	}
	slug := "real-" + strings.ReplaceAll(ref, ".", "-")
	testkit.CreatePoll(t, base, slug, "Real Bitpoll poll "+ref)

	stop()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve after cancel = %v, want nil (a graceful stop); output:\n%s", err, logs.String())
		}
	case <-time.After(time.Minute):
		t.Errorf("Serve did not return within a minute of the cancel")
	}
	if t.Failed() {
		t.Logf("server output:\n%s", logs.String())
	}
}
