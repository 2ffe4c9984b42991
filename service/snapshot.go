package service

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/store"
	"github.com/bitpoll-install/bitpoll-install/unitgen"
)

// SnapshotDir holds the SQLite snapshots taken before a switch, under the
// state directory.
const SnapshotDir = "snapshots"

// statePath is the state directory as root sees it: with DynamicUser it
// lives in /var/lib/private, and /var/lib/bitpoll links there.
func statePath(l store.Layout) string {
	private := filepath.Join(l.Root, "/var/lib/private", unitgen.StateDirectory)
	if _, err := os.Stat(private); err == nil {
		return private
	}
	return filepath.Join(l.Root, unitgen.StateDir)
}

// snapshot copies the SQLite database, consistently even while the
// service writes, with SQLite's backup API through the new generation's
// Python, before migrations of a new generation run. No database, no
// snapshot.
func snapshot(ctx context.Context, l store.Layout, res *install.Result, fromGen int) (string, error) {
	state := statePath(l)
	db := filepath.Join(state, "db.sqlite3")
	if _, err := os.Stat(db); err != nil {
		return "", nil
	}
	dir := filepath.Join(state, SnapshotDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("snapshot the database: %w", err)
	}
	dst := filepath.Join(dir, fmt.Sprintf("db-gen%d-%s.sqlite3", fromGen, time.Now().UTC().Format("20060102T150405Z")))
	py := filepath.Join(res.Path, install.VenvDir, "bin", "python")
	const script = "import sqlite3, sys\nsrc = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)\ndst = sqlite3.connect(sys.argv[2])\nsrc.backup(dst)\ndst.close()\n"
	cmd := exec.CommandContext(ctx, py, "-I", "-c", script, db, dst+".tmp")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(dst + ".tmp")
		return "", fmt.Errorf("snapshot %s: %w\n%s", db, err, out)
	}
	if err := os.Rename(dst+".tmp", dst); err != nil {
		return "", fmt.Errorf("snapshot %s: %w", db, err)
	}
	return dst, nil
}
