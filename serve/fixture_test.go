package serve

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// TestRunFixture builds the fixture project with real PyPI wheels, serves
// it, then creates an object through its form (CSRF included) and reads
// it back.
func TestRunFixture(t *testing.T) {
	testkit.NeedNetwork(t)
	it := testkit.HostPython(t)
	l := testkit.LockFixture(t, testkit.Target(it), "gunicorn==27.0.1", "whitenoise==6.12.0")
	layout := store.Layout{Root: t.TempDir()}
	res, err := install.Build(context.Background(), install.Options{Lock: l, Layout: layout, Python: it.Path, AppSource: testkit.FixtureApp()})
	if err != nil {
		t.Fatal(err)
	}
	serveAndPost(t, res, layout)
}

func serveAndPost(t *testing.T, res *install.Result, layout store.Layout) {
	port := testkit.FreePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, res, Options{
			Port: port, StateDir: layout.StateDir(), Secrets: layout.SecretsDir(), Workers: 1,
			Stdout: io.Discard, Stderr: testWriter{t}, Ready: func(u string) { ready <- u },
		})
	}()
	var base string
	select {
	case base = <-ready:
	case err := <-done:
		t.Fatalf("Serve ended before it was ready: %v", err)
	case <-time.After(2 * time.Minute):
		cancel()
		t.Fatal("Serve was not ready within 2 minutes")
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	}()

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	page := get(t, c, base)
	m := regexp.MustCompile(`name="csrfmiddlewaretoken" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the form page:\n%s", page)
	}
	form := url.Values{"csrfmiddlewaretoken": {m[1]}, "title": {"Team lunch"}, "slug": {"team-lunch"}}
	req, _ := http.NewRequest(http.MethodPost, base, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Referer", base)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasSuffix(resp.Request.URL.Path, "/poll/team-lunch/") {
		t.Fatalf("POST the form: %s at %s, want 200 at /poll/team-lunch/:\n%s", resp.Status, resp.Request.URL, body)
	}
	if detail := get(t, c, base+"poll/team-lunch/"); !strings.Contains(detail, "Team lunch") {
		t.Errorf("the poll page does not show the title:\n%s", detail)
	}
	if _, err := os.Stat(filepath.Join(layout.StateDir(), "db.sqlite3")); err != nil {
		t.Errorf("no SQLite database in the state dir: %v", err)
	}
}

func get(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", u, resp.Status, body)
	}
	return string(body)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestDevRunsCheckout runs manage.py of a live checkout against the locked
// venv, after a full build shared the wheel cache with it.
func TestDevRunsCheckout(t *testing.T) {
	testkit.NeedNetwork(t)
	it := testkit.HostPython(t)
	l := testkit.LockFixture(t, testkit.Target(it))
	layout := store.Layout{Root: t.TempDir()}
	ctx := context.Background()
	if _, err := install.Build(ctx, install.Options{Lock: l, Layout: layout, Python: it.Path, AppSource: testkit.FixtureApp()}); err != nil {
		t.Fatal(err)
	}
	// The venv-only path hardlinks from the same unpacked cache that the
	// sealed store path above now shares inodes with.
	res, err := install.Build(ctx, install.Options{Lock: l, Layout: layout, Python: it.Path, VenvOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(res.Path, install.AppDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the venv-only store path has an app dir (%v)", err)
	}
	checkout := t.TempDir()
	if err := os.CopyFS(checkout, os.DirFS(testkit.FixtureApp())); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	err = Dev(ctx, res, DevOptions{Checkout: checkout, StateDir: DevStateDir(layout.StateDir(), checkout), Port: 8000,
		Args: []string{"showmigrations", "polls"}, Stdout: &out, Stderr: &out})
	if err != nil {
		t.Fatalf("dev showmigrations: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "0001_initial") {
		t.Errorf("showmigrations printed %q, want the polls migration", out.String())
	}
	// A settings_local.py of the developer's own is never overwritten.
	mine := []byte("DEBUG = True\n")
	local := filepath.Join(checkout, "fixtureapp", "settings_local.py")
	if err := os.WriteFile(local, mine, 0o644); err != nil {
		t.Fatal(err)
	}
	err = Dev(ctx, res, DevOptions{Checkout: checkout, StateDir: t.TempDir(), Args: []string{"check"}, Stdout: io.Discard, Stderr: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "is not bitpoll-install's shim") {
		t.Errorf("Dev over a foreign settings_local.py: %v, want a refusal", err)
	}
	if got, _ := os.ReadFile(local); string(got) != string(mine) {
		t.Errorf("settings_local.py was changed to %q", got)
	}
}
