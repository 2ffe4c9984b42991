// Package backup writes and reads the backups of an installation: one
// root-only archive with the database (copied online and consistent),
// the media, /etc/bitpoll with its secrets, and the current generation's
// identity, listed with their sizes and sha256 in a manifest that is
// written last and checked first. Restore and Drill check every member
// before they act on any; the switch that puts a backup in place is
// service.Plan.Restore's. The archive format is in archive.go.
package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bitpoll-install/bitpoll-install/atomicfile"
	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/service"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// The members that say what the backup was taken of.
const (
	GenerationMember = "generation/generation.json"     // the current generation's record
	StoreMember      = "generation/" + install.Manifest // its store path's manifest: the app pin and every wheel
	EtcPrefix        = "etc"                            // /etc/bitpoll
)

// LastFile, in the layout's opt directory, records the last backup
// written: status reports its age.
const LastFile = "last-backup.json"

// NoSecretsWarning is what a backup without secrets warns.
const NoSecretsWarning = "warning: --no-secrets: this backup holds no secrets. FIELD_ENCRYPTION_KEY encrypts the CalDAV credentials stored in the database, so a restore of this backup cannot bring them back unless the key in /etc/bitpoll/secrets is still the same; keep a copy of the secrets elsewhere"

// Options say what to back up and where.
type Options struct {
	// Output is the archive to write; empty means a new name in the
	// layout's backups directory.
	Output    string
	NoSecrets bool
	Log       func(string)
}

// Result is what Create wrote.
type Result struct {
	Path       string
	Size       int64 // the archive's bytes
	Members    int
	Database   string // "sqlite" or "postgresql"
	Generation int
	AppVersion string
	Secrets    bool
	Duration   time.Duration
}

// Last is the record of the last backup.
type Last struct {
	Path       string    `json:"path"`
	Created    time.Time `json:"created"`
	Size       int64     `json:"size"`
	Generation int       `json:"generation"`
	Secrets    bool      `json:"secrets"`
}

// ReadLast returns the last backup's record, if a backup was written.
func ReadLast(l store.Layout) (Last, bool, error) {
	var last Last
	data, err := os.ReadFile(filepath.Join(l.OptDir(), LastFile))
	if errors.Is(err, fs.ErrNotExist) {
		return last, false, nil
	}
	if err == nil {
		err = json.Unmarshal(data, &last)
	}
	if err != nil {
		return last, false, fmt.Errorf("read the last backup's record: %w", err)
	}
	return last, true, nil
}

// genRecord is GenerationMember.
type genRecord struct {
	store.Meta
	App     string `json:"app"`
	Version string `json:"version"`
}

// Create writes a backup of the current generation's installation while
// the service runs. The caller holds st's lock, so that no switch
// changes the schema meanwhile; plan is the current generation's.
func Create(ctx context.Context, st *store.Store, plan *service.Plan, l store.Layout, o Options) (*Result, error) {
	start := time.Now()
	if o.Log == nil {
		o.Log = func(string) {}
	}
	cur, ok, err := st.CurrentGeneration()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("no generation is current: there is nothing to back up (run bitpoll-install install)")
	}
	if pend, ok, err := st.ReadPending(); err != nil {
		return nil, err
	} else if ok {
		o.Log(fmt.Sprintf("warning: a %s from generation %d to %d was interrupted, so the database may be between two schemas; the backup holds it as it is (run bitpoll-install install to finish the switch, then back up again)", pend.Op, pend.From, pend.To))
	}
	meta, err := st.ReadMeta(cur.N)
	if err != nil {
		return nil, err
	}
	man, err := service.ReadManifest(meta.StorePath)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	dst := o.Output
	if dst == "" {
		dst = filepath.Join(l.BackupsDir(), "bitpoll-"+now.Format("20060102T150405Z")+".tar.gz")
	}
	if dst, err = filepath.Abs(dst); err != nil {
		return nil, err
	}
	if o.NoSecrets {
		o.Log(NoSecretsWarning)
	}
	w, err := create(dst, now)
	if err != nil {
		return nil, err
	}
	done := false
	defer func() {
		if !done {
			w.abort()
		}
	}()
	res := &Result{Path: dst, Generation: cur.N, AppVersion: man.App.Version, Secrets: !o.NoSecrets, Database: "sqlite"}
	rec, err := json.MarshalIndent(genRecord{Meta: meta, App: man.App.Name, Version: man.App.Version}, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := w.addBytes(GenerationMember, append(rec, '\n')); err != nil {
		return nil, err
	}
	if err := w.addFile(StoreMember, filepath.Join(meta.StorePath, install.Manifest)); err != nil {
		return nil, err
	}
	// The database first, so that its copy is as close as can be to the
	// moment the backup started.
	scratch, err := os.MkdirTemp(filepath.Dir(dst), ".bitpoll-backup-")
	if err != nil {
		return nil, fmt.Errorf("back up the database: %w", err)
	}
	defer os.RemoveAll(scratch)
	name := service.BackupSQLite
	if plan.SQLiteFile() == "" {
		name, res.Database = service.BackupPGDump, "postgresql"
	}
	if err := plan.DumpDatabase(ctx, meta.StorePath, filepath.Join(scratch, name)); err != nil {
		return nil, err
	}
	if err := w.addFile(name, filepath.Join(scratch, name)); err != nil {
		return nil, err
	}
	os.RemoveAll(scratch)
	if err := addEtc(w, l, o.NoSecrets); err != nil {
		return nil, err
	}
	if media := plan.MediaDir(); dirExists(media) {
		if err := w.addTree(service.BackupMedia, media); err != nil {
			return nil, err
		}
	}
	res.Members = len(w.members) + 1
	if res.Size, err = w.finish(); err != nil {
		return nil, err
	}
	done = true
	res.Duration = time.Since(start)
	last, _ := json.MarshalIndent(Last{Path: dst, Created: now, Size: res.Size, Generation: cur.N, Secrets: !o.NoSecrets}, "", "  ")
	if err := atomicfile.Write(filepath.Join(l.OptDir(), LastFile), append(last, '\n'), 0o600); err != nil {
		return res, fmt.Errorf("the backup %s is written, but recording it failed: %w", dst, err)
	}
	return res, nil
}

// addEtc adds /etc/bitpoll: the config, the settings file and, unless
// noSecrets, the secrets (without the copies a restore kept).
func addEtc(w *writer, l store.Layout, noSecrets bool) error {
	etc := l.EtcDir()
	secrets := l.SecretsDir()
	return filepath.WalkDir(etc, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == etc && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("back up %s: %w", etc, err)
		}
		if p != etc && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil // bitpoll-install's own bookkeeping
		}
		if d.IsDir() {
			if p == secrets && noSecrets || filepath.Dir(p) == secrets {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("back up %s: %s is a %v, not a regular file", etc, p, d.Type())
		}
		rel, err := filepath.Rel(etc, p)
		if err != nil {
			return err
		}
		return w.addFile(EtcPrefix+"/"+filepath.ToSlash(rel), p)
	})
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// Info is what a backup says of itself.
type Info struct {
	Created    time.Time
	Generation int
	App        string
	AppVersion string
	Database   string // "sqlite" or "postgresql"
	Secrets    bool
	Members    int
}

func info(dir string, m *Manifest) (Info, error) {
	in := Info{Created: m.Created, Members: len(m.Members) + 1, Database: "sqlite"}
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(GenerationMember)))
	if err != nil {
		return in, fmt.Errorf("the backup's %s: %w", GenerationMember, err)
	}
	var g genRecord
	if err := json.Unmarshal(data, &g); err != nil {
		return in, fmt.Errorf("the backup's %s: %w", GenerationMember, err)
	}
	in.Generation, in.App, in.AppVersion = g.N, g.App, g.Version
	if _, ok := m.Find(service.BackupPGDump); ok {
		in.Database = "postgresql"
	}
	for _, x := range m.Members {
		if strings.HasPrefix(x.Name, service.BackupSecrets+"/") {
			in.Secrets = true
		}
	}
	return in, nil
}

// DrillResult is what a restore drill found.
type DrillResult struct {
	Info
	service.DrillResult
	Archive string
	Size    int64
	// Checked says what was checked beyond the manifest.
	Checked  []string
	Duration time.Duration
}

// Drill restores the backup at archive into a scratch directory under
// scratchParent and checks it there with generation n's code (the
// current one): every member against the manifest, SQLite's
// integrity_check, migrate --check, and the polls and votes counted.
// Nothing live is touched. A backup that fails is an error.
func Drill(ctx context.Context, plan *service.Plan, n int, archive, scratchParent string) (*DrillResult, error) {
	start := time.Now()
	if err := os.MkdirAll(scratchParent, 0o700); err != nil {
		return nil, err
	}
	parent, err := os.MkdirTemp(scratchParent, ".bitpoll-drill-")
	if err != nil {
		return nil, fmt.Errorf("make the drill's scratch directory: %w", err)
	}
	defer os.RemoveAll(parent)
	dir := filepath.Join(parent, "restored")
	res, err := drill(ctx, plan, n, archive, dir)
	if err != nil {
		return nil, err
	}
	res.Duration = time.Since(start)
	return res, nil
}

func drill(ctx context.Context, plan *service.Plan, n int, archive, dir string) (*DrillResult, error) {
	m, err := Extract(archive, dir)
	if err != nil {
		return nil, err
	}
	res := &DrillResult{Archive: archive, Checked: []string{"manifest: every byte of the archive, and every member's size and sha256"}}
	if fi, err := os.Stat(archive); err == nil {
		res.Size = fi.Size()
	}
	if res.Info, err = info(dir, m); err != nil {
		return nil, err
	}
	if res.Database == "postgresql" {
		if err := service.CheckPGDump(ctx, filepath.Join(dir, service.BackupPGDump)); err != nil {
			return nil, fmt.Errorf("%s: member %q: %w", archive, service.BackupPGDump, err)
		}
		res.Checked = append(res.Checked, "pg_restore --list reads the dump")
		return res, nil
	}
	secrets := filepath.Join(dir, filepath.FromSlash(service.BackupSecrets))
	if !dirExists(secrets) {
		secrets = "" // the live ones
	}
	d, err := plan.Drill(ctx, n, filepath.Join(dir, service.BackupSQLite), filepath.Join(dir, service.BackupMedia), secrets)
	if err != nil {
		return nil, err
	}
	res.DrillResult = *d
	res.Checked = append(res.Checked, "PRAGMA integrity_check", "migrate --check with generation "+fmt.Sprint(n), "Django's system checks")
	var problems []string
	if d.Integrity != "ok" {
		problems = append(problems, "SQLite integrity_check: "+d.Integrity)
	}
	if len(d.Errors) > 0 {
		problems = append(problems, "Django's system checks: "+strings.Join(d.Errors, "; "))
	}
	if len(d.Unknown) > 0 {
		problems = append(problems, fmt.Sprintf("the database has migrations that generation %d does not know (%s): it is a backup of a newer version; upgrade to that version first, then restore", n, strings.Join(d.Unknown, ", ")))
	}
	if len(problems) > 0 {
		return res, fmt.Errorf("%s: member %q: %s", archive, service.BackupSQLite, strings.Join(problems, "; "))
	}
	return res, nil
}

// RestoreResult is what Restore did.
type RestoreResult struct {
	Drill  *DrillResult
	Switch *service.Result
	Took   time.Duration
}

// Restore verifies the backup at archive in full, restores it into a
// directory beside the live data and drills it there with the current
// generation's code; only then does it hand it to the switch that stops
// the service, puts it in place (keeping what it replaces), migrates to
// the current generation and starts again. A backup that fails any check
// is refused with nothing changed. The caller holds st's lock.
func Restore(ctx context.Context, st *store.Store, plan *service.Plan, archive string) (*RestoreResult, error) {
	start := time.Now()
	if _, err := Verify(archive); err != nil {
		return nil, err
	}
	cur, ok, err := st.CurrentGeneration()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("no generation is current: run bitpoll-install install first, then restore into it")
	}
	state := plan.StateDir()
	if err := os.MkdirAll(state, 0o700); err != nil {
		return nil, err
	}
	dir := filepath.Join(state, "restore-"+time.Now().UTC().Format("20060102T150405.000Z"))
	d, err := drill(ctx, plan, cur.N, archive, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	r, err := plan.Restore(ctx, st, dir)
	if err != nil {
		return nil, err
	}
	return &RestoreResult{Drill: d, Switch: r, Took: time.Since(start)}, nil
}
