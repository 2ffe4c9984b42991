package status

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/layout"
)

func writeRandom(t *testing.T, path string, n int) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDiskUse: each category is measured, and a file hardlinked from
// the store into the cache counts once, in the store; the snapshots are
// not counted in the data.
func TestDiskUse(t *testing.T) {
	l := layout.Layout{Root: t.TempDir()}
	const mib = 1 << 20
	writeRandom(t, filepath.Join(l.StoreDir(), "k-bitpoll-1", "big"), 2*mib)
	if err := os.MkdirAll(l.CacheDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(l.StoreDir(), "k-bitpoll-1", "big"), filepath.Join(l.CacheDir(), "big")); err != nil {
		t.Fatal(err)
	}
	writeRandom(t, filepath.Join(l.CacheDir(), "own"), mib)
	writeRandom(t, filepath.Join(l.StateDir(), "db.sqlite3"), 3*mib)
	writeRandom(t, filepath.Join(l.StateDir(), "snapshots", "1.sqlite3"), 4*mib)
	r, err := Gather(context.Background(), Options{Layout: l})
	if err != nil {
		t.Fatal(err)
	}
	near := func(what string, got, want int64) {
		if got < want || got > want+64<<10 {
			t.Errorf("%s = %d bytes, want %d (and a few blocks of directories)", what, got, want)
		}
	}
	near("store", r.Disk.Store, 2*mib)
	near("cache (its own file alone)", r.Disk.Cache, mib)
	near("data (without the snapshots)", r.Disk.Data, 3*mib)
	near("snapshots", r.Disk.Snapshots, 4*mib)
	if r.Generation != 0 || r.Backup != nil || r.UnitsNote == "" {
		t.Errorf("Gather of a root with no generation and no backup = %+v, want neither, and a note that systemd was not asked", r)
	}
}

// TestLastBackup reads backup's record: its age, whether the archive is
// still there, and a damaged record named.
func TestLastBackup(t *testing.T) {
	l := layout.Layout{Root: t.TempDir()}
	archive := filepath.Join(t.TempDir(), "b.tar")
	writeRandom(t, archive, 10)
	rec := BackupRecord(l)
	if err := os.MkdirAll(filepath.Dir(rec), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(s string) {
		if err := os.WriteFile(rec, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	gather := func() (*Report, error) {
		return Gather(context.Background(), Options{Layout: l, Now: func() time.Time { return now }})
	}
	write(`{"created": "2026-12-05T09:30:00Z", "path": "` + archive + `", "secrets": false, "generation": 2}`)
	r, err := gather()
	if err != nil {
		t.Fatal(err)
	}
	if b := r.Backup; b == nil || b.Age != 150*time.Minute || !b.Exists || b.Path != archive || b.Secrets == nil || *b.Secrets {
		t.Errorf("the last backup = %+v, want 2.5 h old, at %s, still there, without secrets", b, archive)
	}
	os.Remove(archive)
	if r, err = gather(); err != nil || r.Backup == nil || r.Backup.Exists {
		t.Errorf("with the archive removed: %+v, %v; want the record, and Exists false", r.Backup, err)
	}
	write(`{"created": 17`)
	if _, err := gather(); err == nil || !strings.Contains(err.Error(), rec) {
		t.Errorf("a damaged record: %v, want an error naming %s", err, rec)
	}
}
