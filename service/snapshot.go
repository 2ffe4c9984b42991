package service

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/pgbin"
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

// restoreSnapshot puts back the snapshot that generation pend.From owns:
// the database as it was before pend.From's migrations, with
// generation pend.To's schema. The service stops first (there is a gap);
// the database it used is kept beside the restored one.
func (s *switcher) restoreSnapshot(ctx context.Context, pend *store.Pending) error {
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
	return s.replaceDatabase(ctx, pend, from.Snapshot)
}

// replaceDatabase stops the service and puts the database copy src in
// place of the database, keeping the one it replaces beside it (a
// pg_dump archive for PostgreSQL), where pend.Replaced records it.
func (s *switcher) replaceDatabase(ctx context.Context, pend *store.Pending, src string) error {
	if s.p.o.Systemd {
		// The socket stops too: a connection would start the service
		// again, on the database being replaced. The socket starts again
		// with the generation.
		err := withSystemd(ctx, func(sd *systemd) error {
			if err := sd.stop(unitgen.SocketUnit); err != nil {
				return err
			}
			return s.stopOthers(sd, 0)
		})
		if err != nil {
			return err
		}
	}
	db := s.p.sqlitePath()
	if pend.Replaced == "" {
		// Recorded before anything moves: a rerun after a kill must keep
		// the database this run replaces, not the restored copy.
		stamp := time.Now().UTC().Format("20060102T150405Z")
		pend.Replaced = db + ".replaced-" + stamp
		if db == "" {
			pend.Replaced = filepath.Join(statePath(s.p.o.Layout), SnapshotDir, "replaced-"+stamp+".pgdump")
		}
		if err := s.st.WritePending(*pend); err != nil {
			return err
		}
	}
	kept := pend.Replaced
	if db == "" {
		return s.pgRestore(ctx, src, kept)
	}
	if _, err := os.Stat(kept); errors.Is(err, fs.ErrNotExist) {
		// Not yet moved aside (a rerun finds it moved, and db the
		// restored copy or nothing).
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			if err := os.Rename(db+suffix, kept+suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("keep the current database beside the restored one: %w", err)
			}
		}
	}
	if _, err := os.Stat(kept); err == nil {
		s.r.Restored = kept
	}
	if err := copyOwned(src, db, filepath.Dir(db)); err != nil {
		return fmt.Errorf("restore %s: %w", src, err)
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

// pgConnectTimeout bounds pg_dump's and psql's wait for the server, in
// seconds: an unreachable host fails the step instead of hanging it.
const pgConnectTimeout = "30"

// pgTool is the path of a PostgreSQL client program (see pgbin.Find).
func pgTool(name string) (string, error) {
	if p, ok := pgbin.Find(name); ok {
		return p, nil
	}
	return "", fmt.Errorf("%s is not installed: install the PostgreSQL client (apt-get install postgresql-client), so that the database can be snapshotted before migrations and restored", name)
}

// pgConn is how pg_dump, pg_restore and psql log in: as the service
// does, with the same URL, the same user and the same password.
type pgConn struct {
	url string
	env []string
}

// pgConn reads the database settings. The environment is the caller's
// without its PG* variables (the service has none, so they would make the
// tools connect elsewhere than the app); a URL without a user logs in as
// the service's user, as the service does (under systemd, the dynamic
// user; with --root, the caller); the password is the db_password secret
// when there is one, as the settings shim reads it.
func (s *switcher) pgConn() (pgConn, error) {
	raw := s.p.settings.Database.URL
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return pgConn{}, fmt.Errorf("the database is neither SQLite nor a PostgreSQL URL (database.url = %q)", raw)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	env = append(env, "PGCONNECT_TIMEOUT="+pgConnectTimeout, "PGAPPNAME=bitpoll-install")
	if u.User.Username() == "" && s.p.o.Systemd {
		env = append(env, "PGUSER="+unitgen.ServiceUser)
	}
	// Under systemd the service gets the password only as a credential,
	// which the config asks for; with --root the shim reads the secrets
	// directory.
	if s.p.o.Systemd && !slices.Contains(s.p.spec.Credentials, shim.DBPasswordFile) {
		return pgConn{url: raw, env: env}, nil
	}
	if pw, err := os.ReadFile(s.pgPasswordFile()); err == nil {
		// The shim strips the same way; the variable reaches only the
		// client programs, which run as this process's user.
		env = append(env, "PGPASSWORD="+strings.TrimSpace(string(pw)))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return pgConn{}, fmt.Errorf("read the database password: %w", err)
	}
	return pgConn{url: raw, env: env}, nil
}

func (s *switcher) pgPasswordFile() string {
	return filepath.Join(s.p.o.Layout.SecretsDir(), shim.DBPasswordFile)
}

// pgAdvice adds what to do to a client program's failure, where the
// output says it.
func (s *switcher) pgAdvice(out []byte) string {
	switch {
	case bytes.Contains(out, []byte("server version mismatch")):
		return "\nthe server is newer than the installed PostgreSQL client: install the client of the server's major version (apt-get install postgresql-client-N)"
	case bytes.Contains(out, []byte("password authentication failed")), bytes.Contains(out, []byte("no password supplied")):
		return "\nthe database refused the login: put the password the service uses in " + s.pgPasswordFile() + " (root-only, 0600) and set database.password = true in the config"
	}
	return ""
}

// pgDump writes the database into dst in pg_dump's custom format (what
// pg_restore reads): whole, synced, or not at all.
func (s *switcher) pgDump(ctx context.Context, dst string) error {
	conn, err := s.pgConn()
	if err != nil {
		return err
	}
	dump, err := pgTool("pg_dump")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	tmp := dst + ".partial"
	_ = os.Remove(tmp)
	cmd := exec.CommandContext(ctx, dump, "--format=custom", "--file="+tmp, "--dbname="+conn.url)
	cmd.Env = conn.env
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pg_dump %s: %w\n%s%s", conn.url, err, bytes.TrimSpace(out), s.pgAdvice(out))
	}
	if err := syncFile(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pg_dump: %w", err)
	}
	return nil
}

// pgDropAll drops every table, view and sequence the login may drop
// outside PostgreSQL's own schemas, ahead of a restore: pg_restore
// --clean drops only what the snapshot holds, so a table that a newer
// migration created would survive it and break that migration's next
// run. Sequences and indexes that belong to a table go with it.
const pgDropAll = `DO $bitpoll$
DECLARE r record;
BEGIN
  FOR r IN
    SELECT c.relkind, format('%I.%I', n.nspname, c.relname) AS name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
      AND pg_has_role(current_user, c.relowner, 'USAGE')
      AND NOT EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i', 'e'))
  LOOP
    EXECUTE format('DROP %s IF EXISTS %s CASCADE',
      CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
        WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
      r.name);
  END LOOP;
END
$bitpoll$;
`

// pgTimeout turns transaction_timeout off for the restore, where the
// server has it (PostgreSQL 17 and newer): pg_restore's script sets it
// too, but newHeaderFilter removes that line, which older servers refuse.
const pgTimeout = `DO $bitpoll$
BEGIN
  IF current_setting('server_version_num')::int >= 170000 THEN
    PERFORM set_config('transaction_timeout', '0', false);
  END IF;
END
$bitpoll$;
`

// headerFilter passes a pg_restore script through without the line
// "SET transaction_timeout = 0;" of its header: pg_restore of PostgreSQL 17
// writes it into every script, and a server older than 17 refuses it,
// which would stop the restore of its own snapshot with a newer client.
// Only the header (comments, psql's meta-commands such as \restrict, and
// SET lines before the first other statement) is looked at, never the
// data.
type headerFilter struct {
	r      *bufio.Reader
	header bool
	buf    []byte
	err    error
}

func newHeaderFilter(r io.Reader) *headerFilter {
	return &headerFilter{r: bufio.NewReader(r), header: true}
}

func (f *headerFilter) Read(p []byte) (int, error) {
	for len(f.buf) == 0 {
		if f.err != nil {
			return 0, f.err
		}
		if !f.header {
			return f.r.Read(p)
		}
		line, err := f.r.ReadBytes('\n')
		f.err = err
		t := bytes.TrimSpace(line)
		switch {
		case string(t) == "SET transaction_timeout = 0;":
			line = nil
		case len(t) == 0, bytes.HasPrefix(t, []byte("--")), bytes.HasPrefix(t, []byte("\\")),
			bytes.HasPrefix(t, []byte("SET ")), bytes.HasPrefix(t, []byte("SELECT pg_catalog.set_config(")):
		default:
			f.header = false
		}
		f.buf = line
	}
	n := copy(p, f.buf)
	f.buf = f.buf[n:]
	return n, nil
}

// pgRestoreInto replaces the database's tables with the snapshot's, in
// one transaction: pg_restore writes the snapshot as SQL, and psql runs
// it after pgDropAll, between BEGIN and a COMMIT that is sent only once
// pg_restore has written the whole script. Any error, either side, rolls
// all of it back: the database is the snapshot or what it was, never a
// mix.
func (s *switcher) pgRestoreInto(ctx context.Context, snap string) error {
	conn, err := s.pgConn()
	if err != nil {
		return err
	}
	restore, err := pgTool("pg_restore")
	if err != nil {
		return err
	}
	psql, err := pgTool("psql")
	if err != nil {
		return err
	}
	// --file=-: the SQL goes to stdout. --no-owner: the login owns what
	// it restores, as it owned what it dumped.
	gen := exec.CommandContext(ctx, restore, "--file=-", "--no-owner", "--clean", "--if-exists", snap)
	gen.Env = conn.env
	script, err := gen.StdoutPipe()
	if err != nil {
		return err
	}
	var genErr bytes.Buffer
	gen.Stderr = &genErr
	if err := gen.Start(); err != nil {
		return fmt.Errorf("pg_restore %s: %w", snap, err)
	}
	commit := &afterExit{cmd: gen, then: "COMMIT;\n"}
	run := exec.CommandContext(ctx, psql, "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--file=-", "--dbname="+conn.url)
	run.Env = conn.env
	// lock_timeout: a session that holds a table (an admin's psql, a
	// service not yet stopped) fails the restore instead of hanging it.
	run.Stdin = io.MultiReader(strings.NewReader("BEGIN;\nSET lock_timeout = '1min';\n"+pgTimeout+pgDropAll), newHeaderFilter(script), commit)
	var runOut bytes.Buffer
	run.Stdout, run.Stderr = &runOut, &runOut
	runErr := run.Run()
	if !commit.waited {
		// psql stopped before the end of the script: end pg_restore too.
		_ = gen.Process.Kill()
		_ = gen.Wait()
	}
	if commit.err != nil {
		return fmt.Errorf("pg_restore %s (nothing was changed): %w\n%s", snap, commit.err, bytes.TrimSpace(genErr.Bytes()))
	}
	if runErr != nil {
		return fmt.Errorf("restore %s into %s (nothing was changed: it runs in one transaction): %w\n%s%s",
			snap, conn.url, runErr, lastLines(runOut.Bytes(), 20), s.pgAdvice(runOut.Bytes()))
	}
	return nil
}

// afterExit reads as then once cmd has exited successfully, and fails
// otherwise: read after cmd's output, it lets a consumer act on the end
// of that output only when the output was whole.
type afterExit struct {
	cmd    *exec.Cmd
	then   string
	waited bool
	err    error
	r      io.Reader
}

func (a *afterExit) Read(p []byte) (int, error) {
	if !a.waited {
		a.waited = true
		if a.err = a.cmd.Wait(); a.err != nil {
			return 0, a.err
		}
		a.r = strings.NewReader(a.then)
	}
	if a.err != nil {
		return 0, a.err
	}
	return a.r.Read(p)
}

// pgRestore keeps the database as it is in a pg_dump archive beside
// the snapshot (PostgreSQL's data is not a file to move aside), then
// restores the snapshot.
func (s *switcher) pgRestore(ctx context.Context, snap, kept string) error {
	// A dump is renamed into place whole: one that exists was made by an
	// earlier run of this switch, before the database was restored.
	if _, err := os.Stat(kept); errors.Is(err, fs.ErrNotExist) {
		if err := s.pgDump(ctx, kept); err != nil {
			return fmt.Errorf("keep the current database before restoring: %w", err)
		}
	}
	s.r.Restored = kept
	if err := s.pgRestoreInto(ctx, snap); err != nil {
		return err
	}
	return s.clearStamps("")
}
