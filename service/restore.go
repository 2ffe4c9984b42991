package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/bitpoll-install/bitpoll-install/migration"
	"github.com/bitpoll-install/bitpoll-install/store"
	"github.com/bitpoll-install/bitpoll-install/unitgen"
)

// The files of an unpacked backup that a restore puts in place, relative
// to the directory it was unpacked into.
const (
	BackupSQLite  = "database.sqlite3" // SQLite, copied with its backup API
	BackupPGDump  = "database.pgdump"  // PostgreSQL, in pg_dump's custom format
	BackupMedia   = "media"            // the media root's files
	BackupSecrets = "etc/secrets"      // the secrets, unless left out
)

// PhaseBackupRestored is the phase of a restore's switch once the
// backup is in place, with what it replaced kept beside it.
const PhaseBackupRestored store.Phase = "backup-restored"

// SQLiteFile is the SQLite database file as root sees it, or "" when
// the database is PostgreSQL.
func (p *Plan) SQLiteFile() string { return p.sqlitePath() }

// MediaDir is the media root as root sees it.
func (p *Plan) MediaDir() string {
	m := p.settings.MediaRoot
	if rel, ok := strings.CutPrefix(m, unitgen.StateDir+"/"); ok {
		return filepath.Join(statePath(p.o.Layout), rel)
	}
	return filepath.Join(p.o.Layout.Root, m)
}

// StateDir is the state directory as root sees it.
func (p *Plan) StateDir() string { return statePath(p.o.Layout) }

// DumpDatabase copies the database into dst while the service runs,
// consistent as of one moment: SQLite through its backup API with the
// Python of storePath, PostgreSQL with pg_dump. dst appears whole or not
// at all.
func (p *Plan) DumpDatabase(ctx context.Context, storePath, dst string) error {
	if db := p.sqlitePath(); db != "" {
		if _, err := os.Stat(db); err != nil {
			return fmt.Errorf("back up the database: %w (has bitpoll-install install run?)", err)
		}
		return sqliteCopy(ctx, storePath, db, dst)
	}
	return (&switcher{p: p}).pgDump(ctx, dst)
}

// Restore puts the unpacked and verified backup in dir in place and
// runs the current generation on it: the service stops, the database is
// replaced (the current one kept beside it), then the media and the
// secrets the backup holds (the current ones kept beside them); then
// the current generation's migrations run and it passes the health gate
// and starts, as in an upgrade. The caller holds st's lock, and has
// checked the backup (Drill) before: nothing here is refused for what
// the backup holds. An interrupted switch (a killed restore) is finished
// first.
func (p *Plan) Restore(ctx context.Context, st *store.Store, dir string) (*Result, error) {
	if pend, ok, err := st.ReadPending(); err != nil {
		return nil, err
	} else if ok {
		p.o.Log(fmt.Sprintf("finishing the interrupted %s from generation %d to %d first", pend.Op, pend.From, pend.To))
		if _, err := p.resume(ctx, st, pend); err != nil {
			return nil, err
		}
	}
	cur, ok, err := st.CurrentGeneration()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("no generation is current: run bitpoll-install install first, then restore into it")
	}
	want, other := BackupSQLite, BackupPGDump
	if p.sqlitePath() == "" {
		want, other = other, want
	}
	if _, err := os.Stat(filepath.Join(dir, want)); err != nil {
		if _, oerr := os.Stat(filepath.Join(dir, other)); oerr == nil {
			return nil, fmt.Errorf("the backup holds a %s database, but the config's database is %s: set database in the config to the kind the backup holds; nothing was changed", kindOf(other), kindOf(want))
		}
		return nil, fmt.Errorf("the backup holds no database (%s): nothing was changed", want)
	}
	r := &Result{}
	if err := p.writeFiles(cur.N, r); err != nil {
		return nil, err
	}
	return p.run(ctx, st, store.Pending{Op: "restore", From: cur.N, To: cur.N, Restore: dir, Started: time.Now().UTC()}, r)
}

func kindOf(name string) string {
	if name == BackupSQLite {
		return "SQLite"
	}
	return "PostgreSQL"
}

// restoreBackup is the restore's step of the switch: everything in
// pend.Restore goes into place, and what it replaces is kept. A rerun
// after a kill finds what moved already and goes on from there.
func (s *switcher) restoreBackup(ctx context.Context, pend *store.Pending) error {
	dir := pend.Restore
	src := filepath.Join(dir, BackupSQLite)
	if s.p.sqlitePath() == "" {
		src = filepath.Join(dir, BackupPGDump)
	}
	// The restored database is the one from before the migrations that
	// follow: no snapshot of it is needed (and the generation's own
	// snapshot stays).
	s.r.Snapshot = src
	if err := s.replaceDatabase(ctx, pend, src); err != nil {
		return err
	}
	stamp := pend.Started.Format("20060102T150405.000Z")
	owner := statePath(s.p.o.Layout)
	if media := filepath.Join(dir, BackupMedia); exists(media) {
		live := s.p.MediaDir()
		aside := live + ".replaced-" + stamp
		if exists(live) && !exists(aside) {
			if err := os.Rename(live, aside); err != nil {
				return fmt.Errorf("keep the current media beside the restored ones: %w", err)
			}
		}
		if err := os.MkdirAll(filepath.Dir(live), 0o755); err != nil {
			return err
		}
		if err := chownTree(media, owner); err != nil {
			return fmt.Errorf("restore the media: %w", err)
		}
		if err := os.Rename(media, live); err != nil {
			return fmt.Errorf("restore the media: %w", err)
		}
	}
	if secrets := filepath.Join(dir, BackupSecrets); exists(secrets) {
		if err := s.restoreSecrets(secrets, stamp); err != nil {
			return err
		}
	}
	return nil
}

// restoreSecrets puts the backup's secrets in place, each one that
// differs kept first in the secrets directory's replaced-STAMP folder:
// the field encryption key must be the one the restored data was
// encrypted with.
func (s *switcher) restoreSecrets(from, stamp string) error {
	dir := s.p.o.Layout.SecretsDir()
	entries, err := os.ReadDir(from)
	if err != nil {
		return fmt.Errorf("restore the secrets: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			return fmt.Errorf("restore the secrets: %w", err)
		}
		live := filepath.Join(dir, e.Name())
		old, err := os.ReadFile(live)
		if err == nil && bytes.Equal(old, data) {
			continue
		}
		if err == nil {
			aside := filepath.Join(dir, "replaced-"+stamp)
			if err := os.MkdirAll(aside, 0o700); err != nil {
				return fmt.Errorf("keep the secret %s: %w", live, err)
			}
			if _, err := writeFileAtomic(filepath.Join(aside, e.Name()), old, 0o600, s.p.o.Hooks); err != nil {
				return err
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("restore the secrets: %w", err)
		}
		if _, err := writeFileAtomic(live, data, 0o600, s.p.o.Hooks); err != nil {
			return err
		}
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// chownTree gives everything below dir the owner of ref: the state
// directory belongs to the service's dynamic user.
func chownTree(dir, ref string) error {
	fi, err := os.Stat(ref)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) == os.Geteuid() && int(st.Gid) == os.Getegid() {
		return nil
	}
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(st.Uid), int(st.Gid))
	})
}

// DrillResult is what a restore drill found in a restored database.
type DrillResult struct {
	// Integrity is SQLite's PRAGMA integrity_check ("ok").
	Integrity string
	// Unapplied are the migrations of the generation's code that the
	// database lacks (migrate --check fails on them; a restore applies
	// them); Unknown are the database's migrations that the code does
	// not know (a backup of a newer generation: a restore refuses it).
	Unapplied, Unknown []string
	// Errors are Django's system check errors.
	Errors []string
	// Counts are the rows of every model, by its label ("poll.Poll").
	Counts map[string]int
	// Polls and Votes add up the models named Poll and Vote.
	Polls, Votes int
}

// countScript counts the rows of every model Django knows, with the
// environment of the service; it prints a marker and a JSON object.
const countScript = `import json, os, sys
sys.path.insert(0, os.getcwd())
if not os.environ.get("DJANGO_SETTINGS_MODULE"):
    names = [n for n in sorted(os.listdir(".")) if os.path.isfile(os.path.join(n, "settings.py")) and os.path.isfile(os.path.join(n, "wsgi.py"))]
    os.environ["DJANGO_SETTINGS_MODULE"] = names[0] + ".settings"
import django
django.setup()
from django.apps import apps
out = {}
for m in apps.get_models():
    try:
        out[m._meta.label] = m._base_manager.count()
    except Exception as e:
        out[m._meta.label] = -1
print("BITPOLL-COUNT-JSON:" + json.dumps(out))
`

const countMarker = "BITPOLL-COUNT-JSON:"

// Drill runs generation n's code on the SQLite database db (a restored
// copy), with media and the secrets in secrets (the live ones when
// empty), as the caller: Django's system checks, migrate --check,
// SQLite's integrity check, and a count of every model's rows. Nothing
// live is read or written but the generation's code.
func (p *Plan) Drill(ctx context.Context, n int, db, media, secrets string) (*DrillResult, error) {
	set := p.settings
	set.Database.URL, set.Database.Engine, set.Database.Path, set.Database.Name = "", "sqlite", db, ""
	set.MediaRoot = media
	set.StaticRoot = filepath.Join(p.o.Layout.Root, set.StaticRoot)
	r := &directRunner{l: p.o.Layout, settings: set, secrets: secrets, settingsFile: filepath.Join(filepath.Dir(db), "settings-drill.json")}
	out, err := r.python(ctx, n, migration.StateArgs()...)
	state, perr := migration.ParseState(out)
	if perr != nil {
		if err != nil {
			return nil, fmt.Errorf("generation %d could not read the restored database (%v); it says:\n%s", n, err, lastLines(out, 25))
		}
		return nil, fmt.Errorf("generation %d: %w", n, perr)
	}
	res := &DrillResult{Integrity: state.Integrity, Errors: state.Errors, Counts: map[string]int{}}
	for _, m := range state.Unapplied {
		res.Unapplied = append(res.Unapplied, m.String())
	}
	for _, m := range state.Unknown {
		res.Unknown = append(res.Unknown, m.String())
	}
	if len(res.Errors) > 0 || len(res.Unknown) > 0 || res.Integrity != "ok" {
		return res, nil // nothing to count on
	}
	out, err = r.python(ctx, n, "-c", countScript)
	i := bytes.LastIndex(out, []byte(countMarker))
	if err != nil || i < 0 {
		return nil, fmt.Errorf("count the rows of the restored database with generation %d: %v\n%s", n, err, lastLines(out, 25))
	}
	line, _, _ := bytes.Cut(out[i+len(countMarker):], []byte("\n"))
	if err := json.Unmarshal(line, &res.Counts); err != nil {
		return nil, fmt.Errorf("count the rows of the restored database: %w", err)
	}
	for label, c := range res.Counts {
		_, model, _ := strings.Cut(label, ".")
		switch model {
		case "Poll":
			res.Polls += c
		case "Vote":
			res.Votes += c
		}
	}
	return res, nil
}

// CheckPGDump has pg_restore read the table of contents of a pg_dump
// archive: the drill of a PostgreSQL backup, which has no scratch
// server to restore into.
func CheckPGDump(ctx context.Context, path string) error {
	tool, err := pgTool("pg_restore")
	if err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, tool, "--list", path).CombinedOutput(); err != nil {
		return fmt.Errorf("pg_restore --list %s: %w\n%s", path, err, lastLines(out, 10))
	}
	return nil
}
