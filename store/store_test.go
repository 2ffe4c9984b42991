package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

var testFiles = map[string]string{
	"app/manage.py":   "print('hi')\n",
	"venv/bin/run.sh": "#!/bin/sh\n",
	"empty/.keep":     "",
}

func TestBuildTwice(t *testing.T) {
	s := newStore(t)
	key := Key("twice")
	calls := 0
	build := func(dir string) error {
		calls++
		return writeFiles(dir, testFiles)
	}
	p1, built1, err := s.Build(context.Background(), key, "bitpoll", "0.11.0", build)
	if err != nil {
		t.Fatal(err)
	}
	p2, built2, err := s.Build(context.Background(), key, "bitpoll", "0.11.0", build)
	if err != nil {
		t.Fatal(err)
	}
	if want := s.Path(key, "bitpoll", "0.11.0"); p1 != want || p2 != want {
		t.Errorf("Build twice = %q, %q, want %q both times", p1, p2, want)
	}
	if !built1 || built2 || calls != 1 {
		t.Errorf("Build twice: built = %v, %v with %d build calls, want true, false with 1", built1, built2, calls)
	}
	if err := s.Verify(p1); err != nil {
		t.Error(err)
	}
	b, err := os.ReadFile(filepath.Join(p1, "app/manage.py"))
	if err != nil || string(b) != testFiles["app/manage.py"] {
		t.Errorf("ReadFile(app/manage.py) = %q, %v, want %q", b, err, testFiles["app/manage.py"])
	}
	if l := leftovers(t, s); len(l) != 0 {
		t.Errorf("leftovers after Build = %q, want none", l)
	}
}

func TestBuildFailureLeavesNothing(t *testing.T) {
	boom := errors.New("boom")
	for _, tt := range []struct {
		name  string
		build func(dir string) error
		want  string
	}{
		{"build error", func(dir string) error {
			if err := writeFiles(dir, testFiles); err != nil {
				return err
			}
			return boom
		}, "boom"},
		{"writes marker", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, MarkerFile), []byte("x"), 0o644)
		}, "must not create"},
		{"fifo", func(dir string) error {
			if err := writeFiles(dir, testFiles); err != nil {
				return err
			}
			return syscall.Mkfifo(filepath.Join(dir, "app", "pipe"), 0o644)
		}, "only files, directories and symlinks"},
	} {
		s := newStore(t)
		key := Key(tt.name)
		_, built, err := s.Build(context.Background(), key, "bitpoll", "1", tt.build)
		if err == nil || !strings.Contains(err.Error(), tt.want) || built {
			t.Errorf("%s: Build() = built %v, %v, want an error containing %q", tt.name, built, err, tt.want)
		}
		if _, err := os.Lstat(s.Path(key, "bitpoll", "1")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: Lstat(final) = %v, want not exist", tt.name, err)
		}
		if l := leftovers(t, s); len(l) != 0 {
			t.Errorf("%s: leftovers = %q, want none", tt.name, l)
		}
	}
}

func TestBuildRejectsArguments(t *testing.T) {
	good := Key("ok")
	for _, tt := range []struct{ key, name, version, want string }{
		{"nope", "bitpoll", "1", "nix base32"},
		{good, "", "1", "empty"},
		{good, "bit/poll", "1", `has '/'`},
		{good, "..", "1", "must not start"},
		{good, "bitpoll", "1.partial-x", "must not start with \".\" or contain"},
		{good, "bitpoll", "1 2", `has ' '`},
	} {
		s := newStore(t)
		called := false
		_, _, err := s.Build(context.Background(), tt.key, tt.name, tt.version, func(string) error { called = true; return nil })
		if err == nil || !strings.Contains(err.Error(), tt.want) || called {
			t.Errorf("Build(%q, %q, %q) = %v (build called: %v), want an error containing %q and no call", tt.key, tt.name, tt.version, err, called, tt.want)
		}
	}
}

func TestBuildCanceled(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	_, _, err := s.Build(ctx, Key("c"), "bitpoll", "1", func(string) error { called = true; return nil })
	if !errors.Is(err, context.Canceled) || called {
		t.Errorf("Build(canceled) = %v (build called: %v), want context.Canceled and no call", err, called)
	}
}

func TestBuildReadOnly(t *testing.T) {
	s := newStore(t)
	p := mustBuild(t, s, Key("ro"), "bitpoll", "1", testFiles)
	for _, tt := range []struct {
		rel  string
		want os.FileMode
	}{
		{".", os.ModeDir | 0o555},
		{"app", os.ModeDir | 0o555},
		{"app/manage.py", 0o444},
		{"venv/bin/run.sh", 0o555},
		{MarkerFile, 0o444},
	} {
		info, err := os.Lstat(filepath.Join(p, tt.rel))
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode(); got != tt.want {
			t.Errorf("mode of %q = %v, want %v", tt.rel, got, tt.want)
		}
	}
	if os.Geteuid() == 0 {
		t.Log("running as root, which ignores modes: checked the mode bits only")
		return
	}
	if err := os.WriteFile(filepath.Join(p, "app/manage.py"), []byte("x"), 0o644); err == nil {
		t.Error("WriteFile(app/manage.py) in a store path = nil, want permission denied")
	}
	if err := os.WriteFile(filepath.Join(p, "app/new"), []byte("x"), 0o644); err == nil {
		t.Error("WriteFile(app/new) in a store path = nil, want permission denied")
	}
}

func TestBuildKeepsSymlinks(t *testing.T) {
	s := newStore(t)
	p, _, err := s.Build(context.Background(), Key("ln"), "bitpoll", "1", func(dir string) error {
		if err := writeFiles(dir, testFiles); err != nil {
			return err
		}
		return os.Symlink("run.sh", filepath.Join(dir, "venv/bin/python"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.Readlink(filepath.Join(p, "venv/bin/python")); got != "run.sh" || err != nil {
		t.Errorf("Readlink(venv/bin/python) = %q, %v, want %q", got, err, "run.sh")
	}
}

func TestBuildRemovesStalePartials(t *testing.T) {
	s := newStore(t)
	key := Key("stale")
	final := s.Path(key, "bitpoll", "1")
	stale := final + partialInfix + "123"
	other := s.Path(Key("other"), "bitpoll", "1") + partialInfix + "456"
	for _, d := range []string{stale, other} {
		if err := writeFiles(d, testFiles); err != nil {
			t.Fatal(err)
		}
	}
	if err := seal(stale); err != nil { // a crash after sealing leaves it read-only
		t.Fatal(err)
	}
	mustBuild(t, s, key, "bitpoll", "1", testFiles)
	if _, err := os.Lstat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Lstat(stale partial of the same path) = %v, want not exist", err)
	}
	if _, err := os.Lstat(other); err != nil {
		t.Errorf("Lstat(partial of another path) = %v, want it kept", err)
	}
}

func TestBuildRefusesBrokenPath(t *testing.T) {
	s := newStore(t)
	key := Key("broken")
	if err := writeFiles(s.Path(key, "bitpoll", "1"), testFiles); err != nil {
		t.Fatal(err)
	}
	called := false
	_, _, err := s.Build(context.Background(), key, "bitpoll", "1", func(string) error { called = true; return nil })
	if err == nil || !strings.Contains(err.Error(), "exists but is broken") || called {
		t.Errorf("Build(over an unsealed path) = %v (build called: %v), want an error containing %q and no call", err, called, "exists but is broken")
	}
}

func TestVerify(t *testing.T) {
	for _, tt := range []struct {
		name   string
		mutate func(t *testing.T, s *Store, p string) string // returns the path to verify
		want   string
	}{
		{"ok", func(t *testing.T, s *Store, p string) string { return p }, ""},
		{"writable file", func(t *testing.T, s *Store, p string) string {
			chmod(t, filepath.Join(p, "app/manage.py"), 0o644)
			return p
		}, "want read-only"},
		{"writable dir", func(t *testing.T, s *Store, p string) string {
			chmod(t, filepath.Join(p, "app"), 0o755)
			return p
		}, "want read-only"},
		{"setuid", func(t *testing.T, s *Store, p string) string {
			chmod(t, filepath.Join(p, "venv/bin/run.sh"), 0o555|os.ModeSetuid)
			return p
		}, "want read-only"},
		{"no marker", func(t *testing.T, s *Store, p string) string {
			chmod(t, p, 0o755)
			if err := os.Remove(filepath.Join(p, MarkerFile)); err != nil {
				t.Fatal(err)
			}
			chmod(t, p, 0o555)
			return p
		}, "incomplete"},
		{"wrong marker", func(t *testing.T, s *Store, p string) string {
			chmod(t, p, 0o755)
			m := filepath.Join(p, MarkerFile)
			if err := os.Remove(m); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(m, []byte(Key("other")+"\n"), 0o444); err != nil {
				t.Fatal(err)
			}
			chmod(t, p, 0o555)
			return p
		}, "marker holds"},
		{"partial", func(t *testing.T, s *Store, p string) string {
			return p + partialInfix + "1"
		}, "unfinished build"},
		{"outside store", func(t *testing.T, s *Store, p string) string {
			return filepath.Join(t.TempDir(), filepath.Base(p))
		}, "not directly inside store"},
		{"nested", func(t *testing.T, s *Store, p string) string {
			return filepath.Join(p, "app")
		}, "not directly inside store"},
		{"no key", func(t *testing.T, s *Store, p string) string {
			return filepath.Join(s.Layout().StoreDir(), "bitpoll-1")
		}, "does not start with a key"},
		{"symlink", func(t *testing.T, s *Store, p string) string {
			l := s.Path(Key("link"), "bitpoll", "1")
			if err := os.Symlink(filepath.Base(p), l); err != nil {
				t.Fatal(err)
			}
			return l
		}, "want a directory"},
	} {
		s := newStore(t)
		p := tt.mutate(t, s, mustBuild(t, s, Key("verify"), "bitpoll", "1", testFiles))
		err := s.Verify(p)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: Verify(%q) = %v, want error containing %q", tt.name, filepath.Base(p), err, tt.want)
		}
	}
}

func chmod(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}
