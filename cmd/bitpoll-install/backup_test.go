package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/backup"
	"github.com/bitpoll-install/bitpoll-install/internal/pgtest"
	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/resolve"
	"github.com/bitpoll-install/bitpoll-install/service"
	"github.com/bitpoll-install/bitpoll-install/shim"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// TestBackupRestoreRoot backs up a --root install of the fixture app with
// polls and a media file, changes both, refuses a tampered and a
// truncated copy with nothing changed, and restores the backup: the
// polls and the media are back, and the replaced database is kept.
func TestBackupRestoreRoot(t *testing.T) {
	e := newGenEnv(t)
	e.must(append([]string{"install"}, e.version(testkit.FixtureApp(), "1.0.0")...)...)
	e.sql("insert into polls_poll (slug, title, created) values ('one', 'One', '2026-01-01 00:00:00'), ('two', 'Two', '2026-01-02 00:00:00')")
	media := filepath.Join(e.root, "var/lib/bitpoll/media")
	if err := os.MkdirAll(filepath.Join(media, "avatars"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(media, "avatars/a.png"), []byte("picture one"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "b.tar.gz")
	r := e.must("backup", "-o", out)
	if !strings.Contains(r.stdout, "wrote "+out) || !strings.Contains(r.stdout, "with secrets") {
		t.Errorf("backup said %q, want the file written, with secrets", r.stdout)
	}
	// status reports the backup's own record.
	if st := e.must("status"); !strings.Contains(st.stdout, ": "+out+"\n") || !strings.Contains(st.stdout, "backup      ") {
		t.Errorf("status after the backup:\n%s\nwant its line to name %s", st.stdout, out)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("the backup's mode is %v, want 0600 (it holds the secrets)", fi.Mode().Perm())
	}
	m, err := backup.Verify(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"database.sqlite3", "media/avatars/a.png", "etc/bitpoll.toml", "etc/secrets/field_encryption_key", "etc/secrets/secret_key", backup.GenerationMember, backup.StoreMember} {
		if _, ok := m.Find(name); !ok {
			t.Errorf("the backup has no member %s; members: %+v", name, m.Members)
		}
	}
	if last, ok, err := backup.ReadLast(e.layout); err != nil || !ok || last.Path != out {
		t.Errorf("last backup record = %+v, %v, %v; want %s", last, ok, err, out)
	}

	r = e.must("backup", "--verify", out)
	for _, want := range []string{"integrity_check: ok", "fully migrated", "polls: 2", "the restore drill passed"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("backup --verify said:\n%s\nwant %q", r.stdout, want)
		}
	}

	// Changed since the backup.
	e.sql("delete from polls_poll where slug = 'one'", "insert into polls_poll (slug, title, created) values ('three', 'Three', '2026-01-03 00:00:00')")
	if err := os.WriteFile(filepath.Join(media, "avatars/a.png"), []byte("picture two"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := e.dbHash()

	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	tampered := filepath.Join(dir, "tampered.tar.gz")
	bad := append([]byte(nil), data...)
	bad[len(bad)/2] ^= 0x20
	if err := os.WriteFile(tampered, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.tar.gz")
	if err := os.WriteFile(truncated, data[:len(data)*2/3], 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{tampered, truncated} {
		r := e.cli("restore", f)
		if r.code != exitFailure || !strings.Contains(r.stderr, `member "`) || !strings.Contains(r.stderr, "nothing was changed") {
			t.Errorf("restore %s: exit %d, stderr:\n%s\nwant exit 1 naming the member and that nothing was changed", filepath.Base(f), r.code, r.stderr)
		}
		if e.dbHash() != before {
			t.Fatalf("the refused restore of %s changed the database", filepath.Base(f))
		}
		if got, _ := os.ReadFile(filepath.Join(media, "avatars/a.png")); string(got) != "picture two" {
			t.Fatalf("the refused restore of %s changed the media", filepath.Base(f))
		}
		r = e.cli("backup", "--verify", f)
		if r.code != exitFailure || !strings.Contains(r.stderr, `member "`) {
			t.Errorf("backup --verify %s: exit %d, stderr:\n%s\nwant a refusal naming the member", filepath.Base(f), r.code, r.stderr)
		}
	}

	// Killed once the backup is in place: the rerun finishes that
	// restore, then restores again; what the first one replaced is kept.
	killedAt(t, service.PhaseBackupRestored, []string{"--root", e.root, "restore", out})
	if _, pending, err := openStore(t, e).ReadPending(); err != nil || !pending {
		t.Fatalf("after a kill mid-restore, the switch in progress: %v, %v; want it recorded", pending, err)
	}
	r = e.must("restore", out)
	if !strings.Contains(r.stderr, "finishing the interrupted restore") {
		t.Errorf("the rerun said:\n%s\nwant it to finish the interrupted restore first", r.stderr)
	}
	if got := e.sql("select slug from polls_poll order by slug"); got != `[["one"], ["two"]]` {
		t.Errorf("after the restore the polls are %s, want one and two", got)
	}
	if got, _ := os.ReadFile(filepath.Join(media, "avatars/a.png")); string(got) != "picture one" {
		t.Errorf("after the restore the media file holds %q, want the backed-up %q", got, "picture one")
	}
	kept, _ := filepath.Glob(e.db() + ".replaced-*")
	if len(kept) != 2 || !strings.Contains(r.stdout, kept[1]) {
		t.Errorf("the replaced databases: %q; restore said:\n%s\nwant two kept beside (the killed run's and the rerun's), the last named", kept, r.stdout)
	}
	if len(kept) > 0 {
		first := e.sqlOn(kept[0], "select slug from polls_poll order by slug")
		if first != `[["three"], ["two"]]` {
			t.Errorf("the database the first restore replaced holds %s, want the polls from before it (three, two)", first)
		}
	}
	aside, _ := filepath.Glob(media + ".replaced-*")
	if len(aside) != 2 {
		t.Errorf("the replaced media: %q, want two folders kept beside", aside)
	} else if got, _ := os.ReadFile(filepath.Join(aside[0], "avatars/a.png")); string(got) != "picture two" {
		t.Errorf("the media the first restore replaced hold %q, want %q", got, "picture two")
	}
	if left, _ := filepath.Glob(filepath.Join(e.root, "var/lib/bitpoll/restore-*")); len(left) > 0 {
		t.Errorf("the restore left %q behind", left)
	}
}

// TestBackupNoSecrets: --no-secrets warns that the backup cannot bring
// back the CalDAV credentials, and leaves every secret out.
func TestBackupNoSecrets(t *testing.T) {
	e := newGenEnv(t)
	e.must(append([]string{"install"}, e.version(testkit.FixtureApp(), "1.0.0")...)...)
	out := filepath.Join(t.TempDir(), "b.tar.gz")
	r := e.must("backup", "--no-secrets", "-o", out)
	if !strings.Contains(r.stderr, "FIELD_ENCRYPTION_KEY") || !strings.Contains(r.stderr, "CalDAV credentials") || !strings.Contains(r.stdout, "without secrets") {
		t.Errorf("backup --no-secrets: stdout %q, stderr %q; want the FIELD_ENCRYPTION_KEY warning", r.stdout, r.stderr)
	}
	m, err := backup.Verify(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range m.Members {
		if strings.HasPrefix(x.Name, "etc/secrets") {
			t.Errorf("backup --no-secrets holds %s", x.Name)
		}
	}
	if _, ok := m.Find("etc/bitpoll.toml"); !ok {
		t.Error("backup --no-secrets left out the config too")
	}
	if r := e.cli("backup", "-o", out); r.code != exitFailure || !strings.Contains(r.stderr, "exists") {
		t.Errorf("backup over an existing file: exit %d, %q; want a refusal", r.code, r.stderr)
	}
}

// TestPostgresBackupRestore: the round trip on a real PostgreSQL server,
// with --root: the backup holds a pg_dump archive, the drill has
// pg_restore read it, and the restore brings back the polls and keeps
// the database it replaced as a pg_dump archive.
func TestPostgresBackupRestore(t *testing.T) {
	e := newGenEnv(t)
	srv := pgtest.Start(t)
	url := srv.CreateDatabase(t, "bitpoll", "pw-of-bitpoll")
	cfg := "base_url = \"http://localhost:8000\"\nallowed_hosts = [\"localhost\"]\n\n[listen]\naddress = \"127.0.0.1\"\nport = 8000\n\n" +
		"[database]\nurl = \"" + url + "\"\npassword = true\n"
	for path, data := range map[string]string{
		filepath.Join(e.root, "etc/bitpoll/bitpoll.toml"):         cfg,
		filepath.Join(e.layout.SecretsDir(), shim.DBPasswordFile): "pw-of-bitpoll\n",
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	src := testkit.FixtureApp()
	l := testkit.LockFixtureTree(t, src, "1.0.0", e.target, resolve.DefaultExtra...)
	e.must("install", "--lock", testkit.WriteLock(t, l), "--app-source", src, "--python", e.python)
	sql := func(stmts ...string) string { t.Helper(); return srv.SQL(t, "bitpoll", stmts...) }
	polls := func() string { return sql("SELECT string_agg(slug, ',' ORDER BY slug) FROM polls_poll") }
	sql("SET ROLE bitpoll", "INSERT INTO polls_poll (slug, title, created) VALUES ('one', 'One', now()), ('two', 'Two', now())")

	out := filepath.Join(t.TempDir(), "pg.tar.gz")
	r := e.must("backup", "-o", out)
	if !strings.Contains(r.stdout, "postgresql database") {
		t.Errorf("backup said %q, want a postgresql database", r.stdout)
	}
	m, err := backup.Verify(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Find("database.pgdump"); !ok {
		t.Errorf("the backup has no database.pgdump: %+v", m.Members)
	}
	r = e.must("backup", "--verify", out)
	if !strings.Contains(r.stdout, "pg_restore --list reads the dump") {
		t.Errorf("backup --verify said:\n%s\nwant pg_restore's check", r.stdout)
	}

	sql("SET ROLE bitpoll", "DELETE FROM polls_poll WHERE slug = 'one'", "INSERT INTO polls_poll (slug, title, created) VALUES ('three', 'Three', now())")
	r = e.must("restore", out)
	if got := polls(); got != "one,two" {
		t.Errorf("after the restore the polls are %q, want one,two", got)
	}
	kept, _ := filepath.Glob(filepath.Join(e.root, "var/lib/bitpoll/snapshots/replaced-*.pgdump"))
	if len(kept) != 1 || !strings.Contains(r.stdout, kept[0]) {
		t.Fatalf("the replaced database = %q, want one pg_dump archive, named in the output:\n%s", kept, r.stdout)
	}
	srv.SQL(t, "postgres", "CREATE DATABASE kept OWNER bitpoll")
	f, err := os.Open(kept[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if out, err := srv.Run(f, "pg_restore", "--no-owner", "--role=bitpoll", "-d", "kept"); err != nil {
		t.Fatalf("pg_restore of the kept archive: %v\n%s", err, out)
	}
	if got := srv.SQL(t, "kept", "SELECT string_agg(slug, ',' ORDER BY slug) FROM polls_poll"); got != "three,two" {
		t.Errorf("the kept archive holds %q, want three,two (the database the restore replaced)", got)
	}
}

func openStore(t *testing.T, e *genEnv) *store.Store {
	t.Helper()
	st, err := store.Open(e.layout)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// sqlOn runs one query on the SQLite database at path.
func (e *genEnv) sqlOn(path, query string) string {
	e.t.Helper()
	out, err := exec.Command(e.python, "-c", "import json, sqlite3, sys; print(json.dumps(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchall()))", path, query).CombinedOutput()
	if err != nil {
		e.t.Fatalf("sql %q on %s: %v\n%s", query, path, err, out)
	}
	return strings.TrimSpace(string(out))
}
