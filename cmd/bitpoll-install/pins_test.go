package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testarchive"
	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/pyenv"
	"github.com/bitpoll-install/bitpoll-install/treehash"
)

// TestLockCheckAppSource: lock --check --app-source DIR refuses a lock
// that lacks a pin of the tree's requirements file, or holds one at
// another version, naming each, and accepts one that covers them all.
func TestLockCheckAppSource(t *testing.T) {
	app := testkit.FixtureApp() // pins asgiref, django, sqlparse, whitenoise
	tree, err := treehash.GitTree(app)
	if err != nil {
		t.Fatal(err)
	}
	l := smallLock()
	l.App.Tree = tree
	wheel := func(name string, n int) lockfile.File {
		return lockfile.File{Name: name, URL: "https://files.example.invalid/" + name, Size: 100, SHA256: strings.Repeat("1", 63) + string(rune('0'+n))}
	}
	l.Packages = []lockfile.Package{
		{Name: "asgiref", Version: "3.13.0", Wheels: []lockfile.File{wheel("asgiref-3.13.0-py3-none-any.whl", 1)}},
		{Name: "django", Version: "5.2.18", Wheels: []lockfile.File{wheel("django-5.2.18-py3-none-any.whl", 2)}},
		{Name: "sqlparse", Version: "0.6.1", Wheels: []lockfile.File{wheel("sqlparse-0.6.1-py3-none-any.whl", 3)}},
	}
	path := writeLock(t, t.TempDir(), l)
	r := runCLI(t, "lock", "--check", path, "--app-source", app)
	want := []string{
		path + ": the lock does not cover the app's requirements.txt:",
		"django==5.2.19 (requirements.txt:5) is locked at 5.2.18",
		"whitenoise==6.12.0 (requirements.txt:7) is missing",
	}
	for _, w := range want {
		if r.code != exitFailure || !strings.Contains(r.stderr, w) {
			t.Errorf("lock --check of a lock short of the tree's pins = %d, %q; want %d and %q", r.code, r.stderr, exitFailure, w)
		}
	}
	// Without --app-source the same lock is valid: the tree is not read.
	if r := runCLI(t, "lock", "--check", path); r.code != exitOK {
		t.Errorf("lock --check without --app-source = %d, %s; want 0", r.code, r.stderr)
	}

	l.Packages[1] = lockfile.Package{Name: "django", Version: "5.2.19", Wheels: []lockfile.File{wheel("django-5.2.19-py3-none-any.whl", 2)}}
	l.Packages = append(l.Packages, lockfile.Package{Name: "whitenoise", Version: "6.12.0", Wheels: []lockfile.File{wheel("whitenoise-6.12.0-py3-none-any.whl", 4)}})
	path = writeLock(t, t.TempDir(), l)
	if r := runCLI(t, "lock", "--check", path, "--app-source", app); r.code != exitOK {
		t.Errorf("lock --check --app-source of a covering lock = %d, %s; want 0", r.code, r.stderr)
	}
	// Another tree is refused before its pins are read.
	r = runCLI(t, "lock", "--check", path, "--app-source", filepath.Join(app, "fixtureapp"))
	if r.code != exitFailure || !strings.Contains(r.stderr, "but the lock pins "+tree) {
		t.Errorf("lock --check --app-source of another tree = %d, %q; want the tree named", r.code, r.stderr)
	}
}

// TestRunRefusesLockShortOfPins: run (and install, through the same
// build) refuses a lock that lacks a pin of the verified tree's
// requirements file, before any wheel is fetched, and names the pin.
func TestRunRefusesLockShortOfPins(t *testing.T) {
	it, app, l := fixtureSmallLock(t)
	wheel := func(name string, n int) lockfile.File {
		return lockfile.File{Name: name, URL: "https://files.example.invalid/" + name, Size: 100, SHA256: strings.Repeat("2", 63) + string(rune('0'+n))}
	}
	l.Packages = []lockfile.Package{
		{Name: "asgiref", Version: "3.13.0", Wheels: []lockfile.File{wheel("asgiref-3.13.0-py3-none-any.whl", 1)}},
		{Name: "django", Version: "5.2.19", Wheels: []lockfile.File{wheel("django-5.2.19-py3-none-any.whl", 2)}},
		{Name: "sqlparse", Version: "0.6.1", Wheels: []lockfile.File{wheel("sqlparse-0.6.1-py3-none-any.whl", 3)}},
	}
	path := writeLock(t, t.TempDir(), l)
	root := t.TempDir()
	r := runCLI(t, "--root", root, "run", "--lock", path, "--app-source", app, "--python", it.Path)
	if r.code != exitFailure || !strings.Contains(r.stderr, "the lock does not cover the app's requirements.txt: whitenoise==6.12.0 (requirements.txt:7) is missing") {
		t.Errorf("run with a lock short of a pin = %d, %q; want %d and whitenoise named", r.code, r.stderr, exitFailure)
	}
	if m, _ := filepath.Glob(filepath.Join(root, "var", "cache", "bitpoll-install", "wheels-v1", "*")); len(m) != 0 {
		t.Errorf("run fetched %q before refusing the lock", m)
	}
}

// TestMissingAppSourceFirst: a missing --app-source is refused before
// anything is made under the root, and even when the store already has
// the path (the check comes first, so the build cannot skip it).
func TestMissingAppSourceFirst(t *testing.T) {
	root := t.TempDir()
	path := writeLock(t, t.TempDir(), smallLock())
	missing := filepath.Join(t.TempDir(), "no-such-tree")
	for _, cmd := range []string{"run", "install"} {
		r := runCLI(t, "--root", root, cmd, "--lock", path, "--app-source", missing)
		want := "--app-source " + missing + " does not exist: give a local copy of the app"
		if r.code != exitFailure || !strings.Contains(r.stderr, want) {
			t.Errorf("%s --app-source MISSING = %d, %q; want %d and %q", cmd, r.code, r.stderr, exitFailure, want)
		}
		if m, _ := filepath.Glob(filepath.Join(root, "opt", "bitpoll", "*")); len(m) != 0 {
			t.Errorf("%s with a missing --app-source made %q", cmd, m)
		}
	}

	// The store has the path: a first run names it (it stops at the
	// lock's missing pin), and the path is then put in place, so a build
	// that checked the source late would find it and skip the fetch.
	it, app, l := fixtureSmallLock(t)
	wheel := func(name string, n int) lockfile.File {
		return lockfile.File{Name: name, URL: "https://files.example.invalid/" + name, Size: 100, SHA256: strings.Repeat("4", 63) + string(rune('0'+n))}
	}
	l.Packages = []lockfile.Package{
		{Name: "asgiref", Version: "3.13.0", Wheels: []lockfile.File{wheel("asgiref-3.13.0-py3-none-any.whl", 1)}},
		{Name: "django", Version: "5.2.19", Wheels: []lockfile.File{wheel("django-5.2.19-py3-none-any.whl", 2)}},
		{Name: "sqlparse", Version: "0.6.1", Wheels: []lockfile.File{wheel("sqlparse-0.6.1-py3-none-any.whl", 3)}},
	}
	path = writeLock(t, t.TempDir(), l)
	r := runCLI(t, "--root", root, "run", "--lock", path, "--app-source", app, "--python", it.Path)
	m := regexp.MustCompile(`build store path "([^"]+)"`).FindStringSubmatch(r.stderr)
	if r.code != exitFailure || m == nil {
		t.Fatalf("run with a lock short of pins = %d, %q; want the store path named", r.code, r.stderr)
	}
	if err := os.MkdirAll(filepath.Join(m[1], "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	before := treeOf(t, root)
	if !slices.Contains(before, strings.TrimPrefix(m[1], root+"/")) {
		t.Fatalf("the store path %s is not under the root: %q", m[1], before)
	}
	for _, cmd := range []string{"run", "install"} {
		r := runCLI(t, "--root", root, cmd, "--lock", path, "--app-source", missing, "--python", it.Path)
		want := "--app-source " + missing + " does not exist: give a local copy of the app"
		if r.code != exitFailure || !strings.Contains(r.stderr, want) {
			t.Errorf("%s --app-source MISSING with the store path present = %d, %q; want %d and %q", cmd, r.code, r.stderr, exitFailure, want)
		}
		if after := treeOf(t, root); !slices.Equal(after, before) {
			t.Errorf("%s --app-source MISSING with the store path present changed the root: before %q, after %q", cmd, before, after)
		}
	}
}

// treeOf lists every path under root, relative to it, sorted.
func treeOf(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, err := filepath.Rel(root, p)
		out = append(out, rel)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// fixtureSmallLock is smallLock pinned to the fixture app's tree, for the
// host's Python: a lock whose packages each test fills in.
func fixtureSmallLock(t *testing.T) (*pyenv.Interpreter, string, *lockfile.Lock) {
	t.Helper()
	it := testkit.HostPython(t)
	app := testkit.FixtureApp()
	tree, err := treehash.GitTree(app)
	if err != nil {
		t.Fatal(err)
	}
	l := smallLock()
	l.App.Tree, l.App.Commit = tree, ""
	l.Targets = []string{testkit.Target(it)}
	l.RequiresPython = ">=3.8"
	return it, app, l
}

// tarGz writes the regular files under dir (without .git) to a .tar.gz in
// a temp directory and returns its path.
func tarGz(t *testing.T, dir string) string {
	t.Helper()
	return testarchive.Write(t, filepath.Join(t.TempDir(), "app.tar.gz"), testarchive.TarGz(t, testarchive.FromDir(t, dir)...))
}

// TestURLAppSource: a file:// --app-source is fetched as the URL it is
// (not joined to the working directory), and reaches the check of the
// verified tree; a missing file:// path, or a scheme the fetch does not
// take, is refused before anything is made under the root, naming the
// flag; lock says the same in its words.
func TestURLAppSource(t *testing.T) {
	it, app, l := fixtureSmallLock(t)
	wheel := func(name string, n int) lockfile.File {
		return lockfile.File{Name: name, URL: "https://files.example.invalid/" + name, Size: 100, SHA256: strings.Repeat("3", 63) + string(rune('0'+n))}
	}
	// Short of whitenoise: the run stops right after the tree is
	// fetched and verified, which is the part under test.
	l.Packages = []lockfile.Package{
		{Name: "asgiref", Version: "3.13.0", Wheels: []lockfile.File{wheel("asgiref-3.13.0-py3-none-any.whl", 1)}},
		{Name: "django", Version: "5.2.19", Wheels: []lockfile.File{wheel("django-5.2.19-py3-none-any.whl", 2)}},
		{Name: "sqlparse", Version: "0.6.1", Wheels: []lockfile.File{wheel("sqlparse-0.6.1-py3-none-any.whl", 3)}},
	}
	path := writeLock(t, t.TempDir(), l)
	archive := tarGz(t, app)
	root := t.TempDir()
	r := runCLI(t, "--root", root, "run", "--lock", path, "--app-source", "file://"+archive, "--python", it.Path)
	if r.code != exitFailure || !strings.Contains(r.stderr, "the lock does not cover the app's requirements.txt: whitenoise==6.12.0 (requirements.txt:7) is missing") {
		t.Errorf("run --app-source file://ARCHIVE = %d, %q; want the archive fetched and verified, then whitenoise named", r.code, r.stderr)
	}

	missing := filepath.Join(t.TempDir(), "no-such.tar.gz")
	bad := []struct{ src, want string }{
		{"file://" + missing, "--app-source file://" + missing + " does not exist: give a local copy of the app"},
		{"ftp://example.org/app.tar.gz", `--app-source ftp://example.org/app.tar.gz: the scheme "ftp" is not one bitpoll-install fetches: give a local directory, git repository or archive (.tar.gz, .tgz, .zip), a file:///PATH, http:// or https:// URL, or git::URL`},
		{"hg::https://example.org/app", `--app-source hg::https://example.org/app: "hg":: is not a source type bitpoll-install fetches: give a local directory`},
		{"file://host/app.tar.gz", "--app-source file://host/app.tar.gz: a file URL needs an absolute path, like file:///srv/bitpoll-0.11.0.tar.gz"},
	}
	for _, b := range bad {
		root := t.TempDir()
		for _, cmd := range []string{"run", "install"} {
			r := runCLI(t, "--root", root, cmd, "--lock", path, "--app-source", b.src)
			if r.code != exitFailure || !strings.Contains(r.stderr, b.want) {
				t.Errorf("%s --app-source %s = %d, %q; want %d and %q", cmd, b.src, r.code, r.stderr, exitFailure, b.want)
			}
			if m, _ := filepath.Glob(filepath.Join(root, "*")); len(m) != 0 {
				t.Errorf("%s --app-source %s made %q", cmd, b.src, m)
			}
		}
		r := runCLI(t, "lock", "--app-source", b.src, "--app-version", "0.11.0", "-o", filepath.Join(t.TempDir(), "bitpoll.lock"))
		if r.code != exitFailure || !strings.Contains(r.stderr, b.want) {
			t.Errorf("lock --app-source %s = %d, %q; want %d and %q", b.src, r.code, r.stderr, exitFailure, b.want)
		}
	}
	// lock with a missing plain path: our words, not go-getter's.
	r = runCLI(t, "lock", "--app-source", missing, "--app-version", "0.11.0", "-o", filepath.Join(t.TempDir(), "bitpoll.lock"))
	want := "--app-source " + missing + " does not exist: give a local copy of the app"
	if r.code != exitFailure || !strings.Contains(r.stderr, want) || strings.Contains(r.stderr, "source path error") {
		t.Errorf("lock --app-source MISSING = %d, %q; want %d and %q", r.code, r.stderr, exitFailure, want)
	}
}
