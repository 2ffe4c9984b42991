package install

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/store"
)

// TestSweepLeftovers: what killed runs leave in the cache, the store and
// beside the settings and units goes; finished entries, fresh temporary
// files of live writers and files of others stay.
func TestSweepLeftovers(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir()) // nothing of the machine's $TMPDIR counts
	l := store.Layout{Root: t.TempDir()}
	cache := l.CacheDir()
	old := time.Now().Add(-2 * outsideLockAge)
	// A process that has ended: its temporary files are leftovers at once.
	done := exec.Command("true")
	if err := done.Run(); err != nil {
		t.Fatal(err)
	}
	dead, live := strconv.Itoa(done.Process.Pid), strconv.Itoa(os.Getpid())
	mk := func(p string, dir bool, mtime time.Time) string {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if dir {
			err = os.MkdirAll(filepath.Join(p, "sub"), 0o755)
			if err == nil {
				err = os.WriteFile(filepath.Join(p, "sub", "f"), []byte("x"), 0o444)
			}
			if err == nil {
				err = os.Chmod(filepath.Join(p, "sub"), 0o555) // sealed
			}
		} else {
			err = os.WriteFile(p, []byte("x"), 0o600)
		}
		if err == nil && !mtime.IsZero() {
			err = os.Chtimes(p, mtime, mtime)
		}
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	gone := []string{
		mk(filepath.Join(cache, unpackedDir, ".abc.partial-1"), true, time.Time{}),
		mk(filepath.Join(cache, pycDir, ".abc-def.partial-damaged"), true, time.Time{}),
		mk(filepath.Join(cache, ".named-1"), true, time.Time{}),
		mk(filepath.Join(cache, buildTempPrefix+"1", "secrets", "secret_key"), false, time.Time{}),
		mk(filepath.Join(cache, "pyc-v1", "x"), false, time.Time{}),
		mk(filepath.Join(cache, "unpacked-v2", "x"), false, time.Time{}),
		mk(filepath.Join(l.StoreDir(), "0123456789abcdfghijklmnpqrsvwxyz-other-1.0.partial-7"), true, time.Time{}),
		mk(filepath.Join(l.EtcDir(), ".settings.json.tmp-1"), false, old),
		mk(filepath.Join(l.Root, "etc/systemd/system", ".bitpoll.service.tmp-1"), false, old),
		mk(filepath.Join(l.EtcDir(), ".settings.json.tmp-"+dead+"-123"), false, time.Time{}),
		mk(filepath.Join(l.Root, "etc/systemd/system", ".bitpoll@.service.tmp-"+dead+"-456"), false, time.Time{}),
	}
	gone[3] = filepath.Dir(filepath.Dir(gone[3]))
	gone[4], gone[5] = filepath.Dir(gone[4]), filepath.Dir(gone[5])
	kept := []string{
		mk(filepath.Join(cache, unpackedDir, "abc", "sha256-x"), false, time.Time{}),
		mk(filepath.Join(l.EtcDir(), ".settings.json.tmp-2"), false, time.Time{}),    // may be live
		mk(filepath.Join(l.EtcDir(), ".settings.json.tmp-"+live+"-789"), false, old), // its writer lives
		mk(filepath.Join(l.Root, "etc/systemd/system", ".other.service.tmp-1"), false, old),
		mk(filepath.Join(l.EtcDir(), "bitpoll.toml"), false, time.Time{}),
	}
	if n := SweepLeftovers(l); n != len(gone) {
		t.Errorf("SweepLeftovers removed %d entries, want %d", n, len(gone))
	}
	for _, p := range gone {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is still there after the sweep", p)
		}
	}
	for _, p := range kept {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("the sweep removed %s: %v", p, err)
		}
	}
}

// TestSweepLegacyBuildDirs: the $TMPDIR build folders of older
// installers, with their throwaway secrets, go once an hour old; a
// younger one may be a running older installer's, and stays.
func TestSweepLegacyBuildDirs(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	old, young := filepath.Join(tmp, legacyBuildPrefix+"123"), filepath.Join(tmp, legacyBuildPrefix+"456")
	other := filepath.Join(tmp, "bitpoll-other")
	for _, d := range []string{old, young, other} {
		if err := os.MkdirAll(filepath.Join(d, "secrets"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "secrets", "secret_key"), []byte("throwaway"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hours := time.Now().Add(-2 * legacyBuildAge)
	for _, d := range []string{old, other} {
		if err := os.Chtimes(d, hours, hours); err != nil {
			t.Fatal(err)
		}
	}
	if n := SweepLeftovers(store.Layout{Root: t.TempDir()}); n != 1 {
		t.Errorf("SweepLeftovers removed %d entries, want 1 (the old build folder)", n)
	}
	if _, err := os.Lstat(old); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the old build folder in $TMPDIR is still there (%v)", err)
	}
	for _, d := range []string{young, other} {
		if _, err := os.Lstat(d); err != nil {
			t.Errorf("the sweep removed %s: %v", d, err)
		}
	}
}
