package install

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/fetch"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/pyenv"
	"github.com/bitpoll-install/bitpoll-install/resolve"
	"github.com/bitpoll-install/bitpoll-install/resolve/index"
	"github.com/bitpoll-install/bitpoll-install/shim"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// These tests install real Bitpoll releases from a local git mirror of its
// repository with real PyPI wheels, then check the result the way an admin
// would: Django's deploy checks, a served front page, and a poll created
// through the real form.

// bitpollMirror returns the Bitpoll git mirror named by BITPOLL_MIRROR.
func bitpollMirror(t *testing.T) string {
	t.Helper()
	m := os.Getenv("BITPOLL_MIRROR")
	if m == "" {
		t.Skip("BITPOLL_MIRROR is not set: point it at a git mirror of github.com/fsinfuhh/Bitpoll to run the real-Bitpoll tests")
	}
	return m
}

// realPyPI skips the test under -short or when PyPI cannot be reached.
func realPyPI(t *testing.T) *index.Client {
	t.Helper()
	if testing.Short() {
		t.Skip("installs real Bitpoll with wheels from PyPI: skipped under -short")
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("https://pypi.org/simple/pip/")
	if err != nil {
		t.Skipf("PyPI is unreachable (%v): skipping the real-Bitpoll test", err)
	}
	resp.Body.Close()
	return index.New(index.Options{})
}

// exportRelease writes ref's tree from the mirror into a fresh directory.
// The mirror may lack large blobs (fonts of 4 MiB and more); each gets a
// placeholder, since collectstatic follows the CSS references to them and
// fails on a missing file. The tree is then no longer the upstream one,
// which is why callers lock it as a local source.
func exportRelease(ctx context.Context, t *testing.T, mirror, ref string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bitpoll-"+ref)
	exp, err := fetch.ExportGitTree(ctx, mirror, ref, dir)
	if err != nil {
		t.Fatalf("ExportGitTree(%q, %q) = %v, want the tree exported", mirror, ref, err)
	}
	for _, p := range exp.Missing {
		path := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("placeholder for a blob missing from the mirror\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if len(exp.Missing) > 0 {
		t.Logf("%s: %d blobs missing from the mirror, replaced by placeholders (first: %s)", ref, len(exp.Missing), exp.Missing[0])
	}
	return dir
}

// lockTree locks dir as a local source for exactly interp's target.
func lockTree(ctx context.Context, t *testing.T, idx *index.Client, dir, version string, interp *pyenv.Interpreter) *lockfile.Lock {
	t.Helper()
	target := fmt.Sprintf("cp%s-%s", strings.ReplaceAll(interp.Minor, ".", ""), interp.Arch)
	l, err := resolve.Lock(ctx, idx, resolve.LockOptions{
		App:          resolve.AppSource{Src: dir, Version: version},
		Extra:        resolve.DefaultExtra,
		Targets:      []string{target},
		Glibc:        "2.28",
		ExcludeNewer: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC),
		CreatedBy:    "test",
	}, nil)
	if err != nil {
		t.Fatalf("resolve.Lock(%s %s for %s) = %v, want a lock", dir, version, target, err)
	}
	return l
}

// deployAllowed are the deploy-check IDs accepted, with the reason for
// each. It is empty on purpose: with an https base URL the shim turns on
// secure cookies, HSTS and the other hardening Django's deploy checks ask
// for, so any finding is a regression of the shim or of the app.
var deployAllowed = map[string]string{}

var checkID = regexp.MustCompile(`\(([a-z_.]+\.([EWC])\d+)\)`)

// checkDeploy runs `manage.py check --deploy` on the store path with a
// production-like https configuration and fails on any error and on any
// warning outside deployAllowed.
func checkDeploy(ctx context.Context, t *testing.T, res *Result) {
	t.Helper()
	tmp := t.TempDir()
	secrets := filepath.Join(tmp, "secrets")
	if err := WriteSecrets(secrets); err != nil {
		t.Fatal(err)
	}
	env, err := managementEnv(shim.Settings{
		BaseURL:      "https://bitpoll.example",
		AllowedHosts: []string{"bitpoll.example"},
		Database:     shim.Database{Engine: "sqlite", Path: filepath.Join(tmp, "db.sqlite3")},
		StaticRoot:   filepath.Join(res.Path, StaticDir),
		MediaRoot:    filepath.Join(tmp, "media"),
	}, tmp, secrets)
	if err != nil {
		t.Fatalf("managementEnv = %v, want an environment", err)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(res.Path, VenvDir, "bin", "python"), "manage.py", "check", "--deploy")
	cmd.Dir = filepath.Join(res.Path, AppDir)
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

// syncBuffer collects the server's output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var csrfInput = regexp.MustCompile(`name="csrfmiddlewaretoken" value="([^"]+)"`)

// fetchPage fetches u and returns its status and body.
func fetchPage(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s = %v, want a response", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", u, err)
	}
	return resp.StatusCode, string(body)
}

// createPoll creates a universal poll through the front page's form, the
// way a browser does, and reads it back.
func createPoll(t *testing.T, base, slug, title string) {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	status, page := fetchPage(t, c, base+"/")
	if status != http.StatusOK {
		t.Fatalf("GET / = %d, want 200", status)
	}
	m := csrfInput.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("GET / has no csrfmiddlewaretoken input, want the poll form; page:\n%s", page)
	}
	form := url.Values{
		"csrfmiddlewaretoken": {m[1]},
		"title":               {title},
		"type":                {"universal"},
		"url":                 {slug},
	}
	req, err := http.NewRequest(http.MethodPost, base+"/", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// Django checks Origin against the host for http; Referer only for https.
	req.Header.Set("Origin", base)
	req.Header.Set("Referer", base+"/")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST / (create poll) = %v, want a response", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path == "/" {
		t.Fatalf("POST / (create poll %q) ended at %s with %d, want a redirect to the poll's choice page; page:\n%s",
			slug, resp.Request.URL, resp.StatusCode, body)
	}
	if !strings.Contains(resp.Request.URL.Path, slug) {
		t.Errorf("POST / (create poll %q) redirected to %s, want a page of that poll", slug, resp.Request.URL)
	}
	status, page = fetchPage(t, c, base+"/poll/"+slug+"/")
	if status != http.StatusOK {
		t.Fatalf("GET /poll/%s/ = %d, want 200", slug, status)
	}
	if !strings.Contains(page, title) {
		t.Errorf("GET /poll/%s/ does not show the title %q; page:\n%s", slug, title, page)
	}
}

// TestRealBitpoll installs real Bitpoll releases, serves them with
// gunicorn and uses them. The cases share one layout root, so the wheel
// cache and the unpacked wheels are shared too.
func TestRealBitpoll(t *testing.T) {
	mirror := bitpollMirror(t)
	idx := realPyPI(t)
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
				t.Skipf("no Python %s found (%v): install it, with pyenv for instance, to run this case", c.python, err)
			}
			dir := exportRelease(ctx, t, mirror, c.ref)
			lock := lockTree(ctx, t, idx, dir, c.version, interp)
			opts := Options{Lock: lock, Layout: layout, AppSource: dir, Python: interp.Path}

			start := time.Now()
			res, err := Build(ctx, opts)
			if err != nil {
				t.Fatalf("Build(%s on %s) = %v, want a store path", c.ref, interp, err)
			}
			cold := time.Since(start)
			if !res.Built {
				t.Errorf("Build(%s on %s).Built = false on the first build, want true", c.ref, interp)
			}

			start = time.Now()
			again, err := Build(ctx, opts)
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
func serveAndUse(ctx context.Context, t *testing.T, res *Result, ref string) {
	t.Helper()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	state := t.TempDir()
	var logs syncBuffer
	ready := make(chan string, 1)
	served := make(chan error, 1)
	port := freePort(t)
	go func() {
		served <- Serve(ctx, res, ServeOptions{
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
	status, _ := fetchPage(t, &http.Client{Timeout: 30 * time.Second}, base+"/")
	if status != http.StatusOK {
		t.Errorf("GET / = %d, want 200; output:\n%s", status, logs.String())
	}
	slug := "real-" + strings.ReplaceAll(ref, ".", "-")
	createPoll(t, base, slug, "Real Bitpoll poll "+ref)

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
