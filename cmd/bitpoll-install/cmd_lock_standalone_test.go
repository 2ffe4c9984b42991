package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/standalone"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// TestLockPythonStandalone: lock --python-downloads-json reads a download
// list in uv's format over https, picks the build for each target,
// downloads it once (into the cache install uses) to check its sha256 and
// record its size, and writes the [[interpreter]] entries that lock
// --check accepts; a list whose hash does not match the archive fails and
// writes no lock; --python-standalone alone pins the built-in builds
// without downloading them, so their size is left out.
func TestLockPythonStandalone(t *testing.T) {
	repo := appRepo(t)
	ix := newPEP691Index(t,
		release{name: "django", version: "6.0.5", requires: []string{"asgiref>=3.8.1", "sqlparse>=0.3.1"}, tags: []string{"py3-none-any"}},
		release{name: "asgiref", version: "3.8.1", tags: []string{"py3-none-any"}},
		release{name: "sqlparse", version: "0.5.1", tags: []string{"py3-none-any"}},
		release{name: "psycopg-binary", version: "3.2.3", tags: []string{"cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64"}},
	)
	archive := []byte("an interpreter archive: lock only hashes it")
	ix.files["/python/cpython-3.13.5.tar.gz"] = archive
	list := func(sha string) string {
		return fmt.Sprintf(`{"cpython-3.13.5-linux-x86_64-gnu": {"name": "cpython", "arch": {"family": "x86_64", "variant": null}, "os": "linux", "libc": "gnu",
  "major": 3, "minor": 13, "patch": 5, "prerelease": "", "url": "%s/python/cpython-3.13.5.tar.gz", "sha256": "%s", "variant": null, "build": "20250723"}}`, ix.srv.URL, sha)
	}
	ix.files["/python/downloads.json"] = []byte(list(hexSHA256(archive)))
	ix.files["/python/wrong.json"] = []byte(list(strings.Repeat("0", 64)))
	root := t.TempDir()
	out := filepath.Join(t.TempDir(), "bitpoll.lock")
	args := func(out string, extra ...string) []string {
		return append([]string{"--root", root, "lock", "--app-source", repo, "--app-version", "0.1.0",
			"--index-url", ix.srv.URL + "/simple/", "--extra", "django==6.0.5", "--target", "cp313-x86_64", "-o", out}, extra...)
	}
	r := runTLS(t, ix.srv, args(out, "--python-downloads-json", ix.srv.URL+"/python/downloads.json")...)
	if r.code != exitOK {
		t.Fatalf("lock --python-downloads-json = %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	l, err := lockfile.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := lockfile.Interpreter{Target: "cp313-x86_64", Implementation: "cpython", Version: "3.13.5", Release: "20250723",
		URL: ix.srv.URL + "/python/cpython-3.13.5.tar.gz", Size: int64(len(archive)), SHA256: hexSHA256(archive), Glibc: standalone.DefaultGlibc}
	if len(l.Interpreters) != 1 || l.Interpreters[0] != want {
		t.Errorf("the lock pins %+v, want %+v", l.Interpreters, want)
	}
	cached := filepath.Join(store.Layout{Root: root}.CacheDir(), "wheels-v1", hexSHA256(archive))
	if b, err := os.ReadFile(cached); err != nil || string(b) != string(archive) {
		t.Errorf("the download cache's %s = %q, %v; want the archive, for install", cached, b, err)
	}
	if r := runTLS(t, ix.srv, "lock", "--check", out); r.code != exitOK || !strings.Contains(r.stdout, "valid") || !strings.Contains(r.stdout, "standalone interpreters for cp313-x86_64)") {
		t.Errorf("lock --check = %d %q %q, want valid, naming the pinned interpreter's target", r.code, r.stdout, r.stderr)
	}
	// A broken entry is refused offline, with its line, field and fix.
	text, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(t.TempDir(), "broken.lock")
	if err := os.WriteFile(broken, []byte(strings.Replace(string(text), `version = "3.13.5"`, `version = "3.12.5"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runTLS(t, ix.srv, "lock", "--check", broken)
	if r.code == exitOK || !strings.Contains(r.stderr, `interpreter[0].version: "3.12.5" does not fit target "cp313-x86_64"`) || !strings.Contains(r.stderr, broken+":") {
		t.Errorf("lock --check of a broken entry = %d %q, want the file, line, field and fix", r.code, r.stderr)
	}

	bad := filepath.Join(t.TempDir(), "bad.lock")
	r = runTLS(t, ix.srv, args(bad, "--python-downloads-json", ix.srv.URL+"/python/wrong.json")...)
	if r.code == exitOK || !strings.Contains(r.stderr, "pin the interpreter for cp313-x86_64") || !strings.Contains(r.stderr, "sha256") {
		t.Errorf("lock with a list whose sha256 is wrong = %d %q, want a failure naming the target and the hash", r.code, r.stderr)
	}
	if _, err := os.Stat(bad); err == nil {
		t.Errorf("a failed lock wrote %s", bad)
	}

	builtin := filepath.Join(t.TempDir(), "builtin.lock")
	r = runTLS(t, ix.srv, args(builtin, "--python-standalone")...)
	if r.code != exitOK {
		t.Fatalf("lock --python-standalone = %d\nstderr: %s", r.code, r.stderr)
	}
	l, err = lockfile.ReadFile(builtin)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Interpreters) != 1 || l.Interpreters[0].Size != 0 || l.Interpreters[0].Release != standalone.BuiltinRelease ||
		!strings.HasPrefix(l.Interpreters[0].URL, "https://github.com/astral-sh/python-build-standalone/releases/download/") {
		t.Errorf("lock --python-standalone pins %+v, want the built-in %s build for cp313-x86_64, size unknown", l.Interpreters, standalone.BuiltinRelease)
	}
	data, _ := os.ReadFile(builtin)
	if strings.Contains(string(data[strings.Index(string(data), "[[interpreter]]"):]), "size") {
		t.Errorf("the lock writes a size for an interpreter it did not download:\n%s", data)
	}
}
