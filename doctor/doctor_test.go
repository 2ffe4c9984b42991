package doctor

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/layout"
)

// runOn writes config into a fresh root and runs every check there with
// o's seams; nothing is installed, so the checks that need an
// installation fail, and the ones under test look at the config alone.
func runOn(t *testing.T, config string, o Options) map[string]Result {
	t.Helper()
	o.Layout = layout.Layout{Root: t.TempDir()}
	for _, d := range []string{o.Layout.EtcDir(), o.Layout.CacheDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(o.Layout.ConfigFile(), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	if o.Statfs == nil {
		o.Statfs = func(string) (uint64, string, error) { return 100 << 30, "fs", nil }
	}
	out := map[string]Result{}
	var order []string
	for _, r := range Run(context.Background(), o, nil) {
		out[r.Check] = r
		order = append(order, r.Check)
	}
	if !slices.Equal(order, Names()) {
		t.Fatalf("Run reported %q, want every check once, in order: %q", order, Names())
	}
	return out
}

func want(t *testing.T, what string, r Result, status Status, words ...string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("%s: the %s check = %s (%s), want %s", what, r.Check, r.Status, r.Detail, status)
		return
	}
	text := r.Detail + " | " + r.Fix
	for _, w := range words {
		if !strings.Contains(text, w) {
			t.Errorf("%s: the %s check says %q, want %q in it", what, r.Check, text, w)
		}
	}
	if status == Failed && (r.Fix == "" || strings.Contains(r.Fix, "\n")) {
		t.Errorf("%s: the %s check's fix is %q, want one line", what, r.Check, r.Fix)
	}
}

const proxied = `base_url = "https://poll.example.org"
allowed_hosts = ["poll.example.org"]
secure_proxy_ssl_header = true
[listen]
address = "127.0.0.1"
port = 8000
`

func synced(ok bool) func() (bool, error) { return func() (bool, error) { return ok, nil } }

// TestProxyAndClock: behind a TLS proxy, base_url must be https and only
// local clients may reach gunicorn, and the clock must be synchronized
// and not behind; without secure_proxy_ssl_header both checks skip.
func TestProxyAndClock(t *testing.T) {
	r := runOn(t, proxied, Options{Clock: synced(true)})
	want(t, "https behind a proxy on loopback", r["proxy"], OK)
	want(t, "a synchronized clock", r["clock"], OK)
	want(t, "a valid config", r["allowed-hosts"], OK)

	r = runOn(t, strings.Replace(proxied, "https://", "http://", 1), Options{Clock: synced(true)})
	want(t, "http base_url", r["proxy"], Failed, `base_url "http://poll.example.org" is not https`, "set base_url to the https:// URL")

	r = runOn(t, strings.Replace(proxied, `address = "127.0.0.1"`, `address = "0.0.0.0"`, 1), Options{Clock: synced(true)})
	want(t, "listening on every address", r["proxy"], Failed, "gunicorn listens on 0.0.0.0", "listen on 127.0.0.1 or a unix socket")

	r = runOn(t, proxied, Options{Clock: synced(false)})
	want(t, "an unsynchronized clock", r["clock"], Failed, "not synchronized", "timedatectl set-ntp true")

	r = runOn(t, strings.Replace(proxied, "secure_proxy_ssl_header = true\n", "", 1), Options{Clock: synced(false)})
	want(t, "no proxy", r["clock"], Skipped, "secure_proxy_ssl_header is not set")
	want(t, "no proxy", r["proxy"], Skipped, "secure_proxy_ssl_header is not set")
}

// TestClockBehindGeneration: a clock set back before the newest
// generation was made is found even when the kernel calls it synced.
func TestClockBehindGeneration(t *testing.T) {
	root := t.TempDir()
	l := layout.Layout{Root: root}
	for _, d := range []string{l.StoreDir(), l.GenerationsDir(), filepath.Join(l.StoreDir(), "x")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../store/x", filepath.Join(l.GenerationsDir(), "1")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(l.EtcDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.ConfigFile(), []byte(proxied), 0o644); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-24 * time.Hour)
	var clock Result
	for _, r := range Run(context.Background(), Options{Layout: l, Clock: synced(true), Now: func() time.Time { return past }}, nil) {
		if r.Check == "clock" {
			clock = r
		}
	}
	want(t, "a clock a day behind generation 1", clock, Failed, "before generation 1 was made", "timedatectl")
}

// TestDisk: a file system with less room than an upgrade needs fails
// with gc as the fix; the store, state and cache on one file system are
// named together.
func TestDisk(t *testing.T) {
	config := "base_url = \"http://localhost:8000\"\n"
	low := func(string) (uint64, string, error) { return 100 << 20, "fs", nil }
	r := runOn(t, config, Options{Statfs: low})
	want(t, "100 MiB free", r["disk"], Failed, "has 100.0 MiB free, want 256.0 MiB", "gc")
	r = runOn(t, config, Options{})
	want(t, "100 GiB free", r["disk"], OK, "100.0 GiB free for ")
	two := func(p string) (uint64, string, error) {
		if strings.Contains(p, "cache") {
			return 10 << 20, "cache-fs", nil
		}
		return 100 << 30, "fs", nil
	}
	r = runOn(t, config, Options{Statfs: two})
	want(t, "a small cache file system", r["disk"], Failed, "var/cache/bitpoll-install has 10.0 MiB free")
}

// TestAllowedHosts: base_url's host must pass ALLOWED_HOSTS as Django
// matches it; the check reads a config that has another mistake too.
func TestAllowedHosts(t *testing.T) {
	for _, c := range []struct {
		config string
		status Status
	}{
		{"base_url = \"https://poll.example.org\"\nallowed_hosts = [\".example.org\"]\n", OK},
		{"base_url = \"https://poll.example.org\"\nallowed_hosts = [\"*\"]\n", OK},
		{"base_url = \"https://poll.example.org\"\n", OK}, // defaults to base_url's host
		{"base_url = \"https://poll.example.org\"\nallowed_hosts = [\"example.org\"]\n", Failed},
		{"base_url = \"https://poll.example.org\"\nallowed_hosts = [\"localhost\"]\nworker = 3\n", Failed},
	} {
		r := runOn(t, c.config, Options{})
		if c.status == Failed {
			want(t, c.config, r["allowed-hosts"], Failed, `"poll.example.org" is not in allowed_hosts`, `add "poll.example.org" to allowed_hosts`)
		} else {
			want(t, c.config, r["allowed-hosts"], OK)
		}
	}
}
