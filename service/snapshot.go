package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/shim"
	"github.com/bitpoll-install/bitpoll-install/store"
	"github.com/bitpoll-install/bitpoll-install/unitgen"
)

// SnapshotDir holds the database snapshots taken before migrations, under
// the state directory; each belongs to the generation whose migrations
// followed it, and gc frees it with that generation.
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

// sqlitePath is the SQLite database file as root sees it, or "" for
// another database.
func (p *Plan) sqlitePath() string {
	d := p.settings.Database
	path := d.Path
	if d.URL != "" {
		rest, ok := strings.CutPrefix(d.URL, "sqlite://")
		if !ok {
			return ""
		}
		path = rest
	} else if d.Engine != "sqlite" {
		return ""
	}
	if rel, ok := strings.CutPrefix(path, unitgen.StateDir+"/"); ok {
		return filepath.Join(statePath(p.o.Layout), rel)
	}
	return filepath.Join(p.o.Layout.Root, path)
}

// snapshot takes the database's snapshot before this switch changes its
// schema, once per switch, and gives it to meta's generation.
func (s *switcher) snapshot(ctx context.Context, pend store.Pending, meta *store.Meta) error {
	if s.r.Snapshot != "" {
		return nil
	}
	dir := filepath.Join(statePath(s.p.o.Layout), SnapshotDir)
	stamp := time.Now().UTC().Format("20060102T150405.000Z")
	var dst string
	var err error
	if db := s.p.sqlitePath(); db != "" {
		if _, serr := os.Stat(db); serr != nil {
			return nil // no database yet: nothing to keep
		}
		dst = filepath.Join(dir, fmt.Sprintf("gen%d-before-%s.sqlite3", meta.N, stamp))
		err = sqliteCopy(ctx, meta.StorePath, db, dst)
	} else {
		dst = filepath.Join(dir, fmt.Sprintf("gen%d-before-%s.pgdump", meta.N, stamp))
		err = s.pgDump(ctx, dst)
	}
	if err != nil {
		return fmt.Errorf("snapshot the database before migrating: %w", err)
	}
	old := meta.Snapshot
	meta.Snapshot, meta.SnapshotOf = dst, pend.From
	if err := s.st.WriteMeta(*meta); err != nil {
		return err
	}
	if old != "" && old != dst {
		_ = os.Remove(old) // a generation owns one: the one before its last migration
	}
	s.r.Snapshot = dst
	s.phase(PhaseSnapshot, dst)
	return nil
}

// sqliteCopy copies the database src to dst with SQLite's online backup
// API, through the store path's Python: consistent even while the service
// writes, WAL included, which a file copy is not. dst appears whole or
// not at all.
func sqliteCopy(ctx context.Context, storePath, src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	py := filepath.Join(storePath, install.VenvDir, "bin", "python")
	const script = "import sqlite3, sys\nsrc = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)\ndst = sqlite3.connect(sys.argv[2])\nsrc.backup(dst)\ndst.close()\nsrc.close()\n"
	tmp := dst + ".partial"
	_ = os.Remove(tmp)
	cmd := exec.CommandContext(ctx, py, "-I", "-c", script, src, tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("copy %s: %w\n%s", src, err, out)
	}
	if err := syncFile(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// pgEnv is the environment that lets pg_dump and pg_restore log in.
func (s *switcher) pgEnv() ([]string, string, error) {
	d := s.p.settings.Database
	url := d.URL
	if url == "" {
		return nil, "", errors.New("the database is neither SQLite nor a PostgreSQL URL")
	}
	env := os.Environ()
	if pw, err := os.ReadFile(filepath.Join(s.p.o.Layout.SecretsDir(), shim.DBPasswordFile)); err == nil {
		env = append(env, "PGPASSWORD="+strings.TrimRight(string(pw), "\n"))
	}
	return env, url, nil
}

func (s *switcher) pgDump(ctx context.Context, dst string) error {
	env, url, err := s.pgEnv()
	if err != nil {
		return err
	}
	if _, err := exec.LookPath("pg_dump"); err != nil {
		return errors.New("pg_dump is not installed: install the PostgreSQL client (apt-get install postgresql-client), so that the database can be snapshotted before migrations")
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "pg_dump", "--format=custom", "--file="+dst+".partial", "--dbname="+url)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(dst + ".partial")
		return fmt.Errorf("pg_dump: %w\n%s", err, out)
	}
	return os.Rename(dst+".partial", dst)
}

// restoreSnapshot puts back the snapshot that generation pend.From owns:
// the database as it was before pend.From's migrations, with
// generation pend.To's schema. The service stops first (there is a gap);
// the database it used is kept beside the restored one.
func (s *switcher) restoreSnapshot(ctx context.Context, pend store.Pending) error {
	from, err := s.st.ReadMeta(pend.From)
	if err != nil {
		return err
	}
	if from.Snapshot == "" {
		return fmt.Errorf("generation %d has no snapshot to restore (it was taken only when its migrations changed the database); restore a backup instead", pend.From)
	}
	if from.SnapshotOf != pend.To {
		return fmt.Errorf("generation %d's snapshot holds the database of generation %d, not %d: roll back to generation %d with --restore-snapshot, or restore a backup", pend.From, from.SnapshotOf, pend.To, from.SnapshotOf)
	}
	if _, err := os.Stat(from.Snapshot); err != nil {
		return fmt.Errorf("the snapshot of generation %d: %w", pend.From, err)
	}
	if s.p.o.Systemd {
		err := withSystemd(ctx, func(sd *systemd) error { return s.stopOthers(sd, 0) })
		if err != nil {
			return err
		}
	}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	db := s.p.sqlitePath()
	if db == "" {
		return s.pgRestore(ctx, from.Snapshot, stamp)
	}
	kept := db + ".replaced-" + stamp
	if _, err := os.Stat(db); err == nil {
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			if err := os.Rename(db+suffix, kept+suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("keep the current database beside the restored one: %w", err)
			}
		}
		s.r.Restored = kept
	}
	if err := copyOwned(from.Snapshot, db, filepath.Dir(db)); err != nil {
		return fmt.Errorf("restore the snapshot %s: %w", from.Snapshot, err)
	}
	return s.clearStamps("")
}

// copyOwned copies src to dst (via a temporary name) with the owner of
// dir, which the service's dynamic user owns.
func copyOwned(src, dst, dir string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".restoring"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if fi, serr := os.Stat(dir); serr == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				err = os.Chown(tmp, int(st.Uid), int(st.Gid))
			}
		}
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func (s *switcher) pgRestore(ctx context.Context, snap, stamp string) error {
	kept := filepath.Join(filepath.Dir(snap), "replaced-"+stamp+".pgdump")
	if err := s.pgDump(ctx, kept); err != nil {
		return fmt.Errorf("keep the current database before restoring: %w", err)
	}
	s.r.Restored = kept
	env, url, err := s.pgEnv()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "pg_restore", "--clean", "--if-exists", "--no-owner", "--dbname="+url, snap)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pg_restore %s: %w\n%s", snap, err, out)
	}
	return s.clearStamps("")
}
