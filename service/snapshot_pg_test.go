package service

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/internal/pgtest"
	"github.com/bitpoll-install/bitpoll-install/shim"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// pgSwitcher is a switch's PostgreSQL half against a database of a real
// server, with its password in the layout's secrets directory.
func pgSwitcher(t *testing.T, url, password string) *switcher {
	t.Helper()
	l := store.Layout{Root: t.TempDir()}
	if err := os.MkdirAll(l.SecretsDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.SecretsDir(), shim.DBPasswordFile), []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &Plan{o: Options{Layout: l, Log: func(string) {}}, settings: shim.Settings{Database: shim.Database{URL: url}}}
	return &switcher{p: p, r: &Result{}}
}

// TestPostgresSnapshotRestore takes a snapshot of a real PostgreSQL
// database with pg_dump, changes the database as a migration would (a new
// column, a new table, new rows), and restores the snapshot: the rows
// written since are gone, the new table and column too, the sequence goes
// on from the snapshot's, and the replaced database is kept in a pg_dump
// archive that holds the rows written since.
func TestPostgresSnapshotRestore(t *testing.T) {
	srv := pgtest.Start(t)
	url := srv.CreateDatabase(t, "app", "pw-of-app")
	sql := func(stmts ...string) string { t.Helper(); return srv.SQL(t, "app", stmts...) }
	sql("SET ROLE app",
		"CREATE TABLE polls (id serial PRIMARY KEY, slug text NOT NULL UNIQUE)",
		"INSERT INTO polls (slug) VALUES ('before')")
	s := pgSwitcher(t, url, "pw-of-app")
	ctx := context.Background()
	snap := filepath.Join(statePath(s.p.o.Layout), SnapshotDir, "gen2-before.pgdump")
	if err := s.pgDump(ctx, snap); err != nil {
		t.Fatalf("pgDump: %v", err)
	}
	if left, _ := filepath.Glob(snap + ".partial"); len(left) > 0 {
		t.Errorf("pgDump left %q behind", left)
	}

	sql("SET ROLE app",
		"ALTER TABLE polls ADD COLUMN note text NOT NULL DEFAULT ''",
		"CREATE TABLE votes (id serial PRIMARY KEY, poll_id int REFERENCES polls (id), choice text)",
		"CREATE VIEW poll_names AS SELECT slug FROM polls",
		"INSERT INTO polls (slug, note) VALUES ('after', 'written after the snapshot')",
		"INSERT INTO votes (poll_id, choice) VALUES (2, 'yes')")

	if err := s.pgRestore(ctx, snap, filepath.Join(filepath.Dir(snap), "replaced-20260101T000000Z.pgdump")); err != nil {
		t.Fatalf("pgRestore: %v", err)
	}
	if got := sql("SELECT id, slug FROM polls ORDER BY id"); got != "1|before" {
		t.Errorf("after the restore, polls = %q, want the snapshot's one row 1|before", got)
	}
	if got := sql("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'"); got != "polls" {
		t.Errorf("after the restore, the tables are %q, want polls alone (votes came after the snapshot)", got)
	}
	if got := sql("SELECT count(*) FROM information_schema.columns WHERE table_name = 'polls' AND column_name = 'note'"); got != "0" {
		t.Errorf("after the restore, polls has the column added since (count %s)", got)
	}
	if got := sql("SELECT count(*) FROM pg_views WHERE schemaname = 'public'"); got != "0" {
		t.Errorf("after the restore, %s views remain, want none", got)
	}
	if got := sql("SET ROLE app", "INSERT INTO polls (slug) VALUES ('next') RETURNING id"); got != "2" {
		t.Errorf("the first row after the restore got id %q, want 2 (the snapshot's sequence)", got)
	}
	if got := sql("SELECT tableowner FROM pg_tables WHERE tablename = 'polls'"); got != "app" {
		t.Errorf("the restored table belongs to %q, want app, the login", got)
	}

	kept := s.r.Restored
	if filepath.Dir(kept) != filepath.Dir(snap) || !strings.HasSuffix(kept, ".pgdump") {
		t.Fatalf("the replaced database was kept at %q, want a .pgdump beside %s", kept, snap)
	}
	srv.SQL(t, "postgres", "CREATE DATABASE check_kept OWNER app")
	restoreInto(t, srv, "check_kept", kept)
	if got := srv.SQL(t, "check_kept", "SELECT string_agg(slug || ':' || note, ',' ORDER BY id) FROM polls", "SELECT count(*) FROM votes"); got != "before:,after:written after the snapshot\n1" {
		t.Errorf("the kept archive holds %q, want the database as it was before the restore", got)
	}
}

// restoreInto loads a pg_dump archive into db with the server's own
// pg_restore, as an admin would.
func restoreInto(t *testing.T, srv *pgtest.Server, db, archive string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, err := srv.Run(f, "pg_restore", "--no-owner", "--role=app", "-d", db)
	if err != nil {
		t.Fatalf("pg_restore %s: %v\n%s", archive, err, out)
	}
}

// TestPostgresRestoreIsAtomic restores archives that pg_restore fails on:
// one cut in its data, and one that is no archive at all, for which
// pg_restore writes nothing while psql has already dropped the tables.
// Since the COMMIT is sent only after pg_restore succeeded, the database
// is exactly what it was.
func TestPostgresRestoreIsAtomic(t *testing.T) {
	srv := pgtest.Start(t)
	url := srv.CreateDatabase(t, "app", "pw")
	s := pgSwitcher(t, url, "pw")
	ctx := context.Background()
	sql := func(stmts ...string) string { t.Helper(); return srv.SQL(t, "app", stmts...) }
	sql("SET ROLE app", "CREATE TABLE polls (id serial PRIMARY KEY, slug text)",
		"INSERT INTO polls (slug) SELECT 'snap-' || g FROM generate_series(1, 20000) g")
	snap := filepath.Join(t.TempDir(), "snap.pgdump")
	if err := s.pgDump(ctx, snap); err != nil {
		t.Fatal(err)
	}
	sql("SET ROLE app", "DELETE FROM polls", "INSERT INTO polls (slug) VALUES ('current')", "CREATE TABLE extra (x int)", "INSERT INTO extra VALUES (7)")
	data, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(t.TempDir(), "broken.pgdump")
	if err := os.WriteFile(broken, data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	state := func() string {
		return sql("SELECT string_agg(slug, ',') FROM polls") + "/" + sql("SELECT count(*) FROM extra")
	}
	garbage := filepath.Join(t.TempDir(), "garbage.pgdump")
	if err := os.WriteFile(garbage, []byte("not an archive\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := state()
	for _, bad := range []string{broken, garbage} {
		err = s.pgRestoreInto(ctx, bad)
		if err == nil || !strings.Contains(err.Error(), "nothing was changed") {
			t.Errorf("restoring %s = %v, want an error that says nothing was changed", filepath.Base(bad), err)
		}
		if after := state(); after != before {
			t.Errorf("after a failed restore of %s the database holds %q, want %q as before", filepath.Base(bad), after, before)
		}
	}
	// The whole archive restores: the failure was the cut's.
	if err := s.pgRestoreInto(ctx, snap); err != nil {
		t.Fatalf("restoring the whole archive: %v", err)
	}
	if got := sql("SELECT count(*) FROM polls"); got != "20000" {
		t.Errorf("after restoring the whole archive polls has %s rows, want 20000", got)
	}
}

// TestPostgresWrongPassword: a login the server refuses fails the
// snapshot with the server's reason and says where the password goes.
func TestPostgresWrongPassword(t *testing.T) {
	srv := pgtest.Start(t)
	url := srv.CreateDatabase(t, "app", "right")
	s := pgSwitcher(t, url, "wrong")
	err := s.pgDump(context.Background(), filepath.Join(t.TempDir(), "x.pgdump"))
	if err == nil || !strings.Contains(err.Error(), "password authentication failed") || !strings.Contains(err.Error(), s.pgPasswordFile()) {
		t.Errorf("pgDump with a wrong password = %v, want the server's refusal and where the password goes", err)
	}
}

// TestPGConnEnvironment: the client programs see none of the caller's
// PG* variables (the service has none), log in as the service's user when
// the URL names none under systemd, and get the db_password secret.
func TestPGConnEnvironment(t *testing.T) {
	t.Setenv("PGHOST", "elsewhere.invalid")
	t.Setenv("PGUSER", "someone")
	s := pgSwitcher(t, "postgresql://127.0.0.1:5432/bitpoll", "pw")
	s.p.o.Systemd = true
	s.p.spec.Credentials = []string{shim.SecretKeyFile, shim.DBPasswordFile}
	c, err := s.pgConn()
	if err != nil {
		t.Fatal(err)
	}
	var pg []string
	for _, kv := range c.env {
		if strings.HasPrefix(kv, "PG") {
			pg = append(pg, kv)
		}
	}
	slices.Sort(pg)
	want := []string{"PGAPPNAME=bitpoll-install", "PGCONNECT_TIMEOUT=" + pgConnectTimeout, "PGPASSWORD=pw", "PGUSER=bitpoll"}
	if !slices.Equal(pg, want) {
		t.Errorf("pgConn's PG variables = %q, want %q", pg, want)
	}
	// Without database.password the service gets no password, so
	// neither do the tools.
	s.p.spec.Credentials = []string{shim.SecretKeyFile}
	if c, err := s.pgConn(); err != nil || slices.ContainsFunc(c.env, func(kv string) bool { return strings.HasPrefix(kv, "PGPASSWORD=") }) {
		t.Errorf("pgConn without the credential = %v, %v; want no PGPASSWORD", c.env, err)
	}
	s.p.settings.Database.URL = "mysql://db/x"
	if _, err := s.pgConn(); err == nil {
		t.Error("pgConn accepted a mysql:// URL")
	}
}

// TestPostgresSnapshotSize logs how long a snapshot and a restore of a
// database of 200,000 rows take, and the archive's size: numbers for the
// report, not a bound.
func TestPostgresSnapshotSize(t *testing.T) {
	srv := pgtest.Start(t)
	url := srv.CreateDatabase(t, "app", "pw")
	srv.SQL(t, "app", "SET ROLE app",
		"CREATE TABLE polls (id serial PRIMARY KEY, slug text UNIQUE, title text, created timestamptz DEFAULT now())",
		"INSERT INTO polls (slug, title) SELECT 'poll-' || g, repeat('title ', 8) || g FROM generate_series(1, 200000) g")
	size := srv.SQL(t, "app", "SELECT pg_size_pretty(pg_database_size('app'))")
	s := pgSwitcher(t, url, "pw")
	ctx := context.Background()
	snap := filepath.Join(t.TempDir(), "big.pgdump")
	start := time.Now()
	if err := s.pgDump(ctx, snap); err != nil {
		t.Fatal(err)
	}
	dumped := time.Since(start)
	fi, err := os.Stat(snap)
	if err != nil {
		t.Fatal(err)
	}
	srv.SQL(t, "app", "DELETE FROM polls WHERE id > 100")
	start = time.Now()
	if err := s.pgRestoreInto(ctx, snap); err != nil {
		t.Fatal(err)
	}
	restored := time.Since(start)
	if got := srv.SQL(t, "app", "SELECT count(*) FROM polls"); got != "200000" {
		t.Errorf("after the restore polls has %s rows, want 200000", got)
	}
	t.Logf("PostgreSQL %s, database of 200000 rows (%s): pg_dump %v, archive %s; restore %v",
		srv.Version, size, dumped.Round(time.Millisecond), fmt.Sprintf("%.1f MiB", float64(fi.Size())/(1<<20)), restored.Round(time.Millisecond))
}

// TestHeaderFilter: the header's "SET transaction_timeout = 0;" (which
// PostgreSQL 17's pg_restore writes and older servers refuse) goes, and
// everything else stays, a data row with the same text included.
func TestHeaderFilter(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"--\n-- PostgreSQL database dump\n--\n\n\\restrict k3y\n\nSET statement_timeout = 0;\nSET transaction_timeout = 0;\nSET lock_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\nDROP TABLE IF EXISTS public.t;\nCOPY public.t (x) FROM stdin;\nSET transaction_timeout = 0;\n\\.\n",
			"--\n-- PostgreSQL database dump\n--\n\n\\restrict k3y\n\nSET statement_timeout = 0;\nSET lock_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\nDROP TABLE IF EXISTS public.t;\nCOPY public.t (x) FROM stdin;\nSET transaction_timeout = 0;\n\\.\n"},
		{"SET transaction_timeout = 0;", ""},
		{"SET a = 1;\nCREATE TABLE t (x int);", "SET a = 1;\nCREATE TABLE t (x int);"},
		{"", ""},
	} {
		var out strings.Builder
		// A small buffer: lines cross reads.
		buf := make([]byte, 7)
		f := newHeaderFilter(strings.NewReader(c.in))
		for {
			n, err := f.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				break
			}
		}
		if out.String() != c.want {
			t.Errorf("headerFilter(%q) = %q, want %q", c.in, out.String(), c.want)
		}
	}
}
