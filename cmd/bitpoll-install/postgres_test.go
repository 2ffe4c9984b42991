package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/internal/pgtest"
	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/resolve"
	"github.com/bitpoll-install/bitpoll-install/shim"
)

// addVote and voteModel add a model that refers to Poll.
var (
	addVote = map[string]string{
		"fixtureapp/polls/migrations/0004_vote.py": `from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("polls", "0003_remove_poll_note")]
    operations = [
        migrations.CreateModel(
            "Vote",
            [
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("choice", models.CharField(max_length=20)),
                ("poll", models.ForeignKey(on_delete=models.CASCADE, to="polls.poll")),
            ],
        ),
    ]
`,
	}
	voteModel = `

class Vote(models.Model):
    poll = models.ForeignKey(Poll, on_delete=models.CASCADE)
    choice = models.CharField(max_length=20)
`
)

// TestPostgresUpgradeRollbackRestore runs the generations of the fixture
// app on a real PostgreSQL server, with --root: the lock carries the
// PostgreSQL driver from PyPI, the password comes from the secrets
// directory, each migrating switch takes a pg_dump snapshot, a rollback
// reverses a migration with the newer code, a rollback across a RemoveField
// is refused by name with nothing changed, --restore-snapshot brings back
// the database from before (without the table added since, which refers
// to a restored one) and keeps the replaced one as a pg_dump
// archive that it names, and gc frees the snapshot of the generation it
// removes.
func TestPostgresUpgradeRollbackRestore(t *testing.T) {
	e := newGenEnv(t)
	srv := pgtest.Start(t)
	url := srv.CreateDatabase(t, "bitpoll", "pw-of-bitpoll")
	e.usePostgres(url, "pw-of-bitpoll")
	version := e.pgVersion
	v1 := version(testkit.FixtureApp(), "1.0.0")
	v2 := version(testkit.FixtureVariant(t, true, testkit.AddNote), "1.0.2")
	// 1.0.3 also adds a table that refers to polls_poll: a restore must
	// drop it, though the snapshot does not know it.
	v3src := testkit.FixtureVariant(t, false, testkit.AddNote, testkit.DropNote, addVote)
	models := filepath.Join(v3src, "fixtureapp/polls/models.py")
	text, err := os.ReadFile(models)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(models, append(text, voteModel...), 0o644); err != nil {
		t.Fatal(err)
	}
	v3 := version(v3src, "1.0.3")
	sql := func(stmts ...string) string { t.Helper(); return srv.SQL(t, "bitpoll", stmts...) }
	migrations := func() string {
		return sql("SELECT string_agg(name, ',' ORDER BY name) FROM django_migrations WHERE app = 'polls'")
	}
	polls := func() string { return sql("SELECT string_agg(slug, ',' ORDER BY id) FROM polls_poll") }

	e.must(append([]string{"install"}, v1...)...)
	if got := migrations(); got != "0001_initial" {
		t.Fatalf("after install, the polls migrations in PostgreSQL = %q, want 0001_initial", got)
	}
	if got := sql("SELECT tableowner FROM pg_tables WHERE tablename = 'polls_poll'"); got != "bitpoll" {
		t.Errorf("polls_poll belongs to %q, want bitpoll: the app logged in with the URL's user and the secret's password", got)
	}
	sql("SET ROLE bitpoll", "INSERT INTO polls_poll (slug, title, created) VALUES ('before', 'Before the upgrade', now())")

	r := e.must(append([]string{"upgrade"}, v2...)...)
	if !strings.Contains(r.stdout, "applied migrations: polls.0002_poll_note") || !strings.Contains(r.stdout, "snapshot of the database:") {
		t.Errorf("upgrade printed:\n%s\nwant 0002 applied after a snapshot", r.stdout)
	}
	m2 := e.meta(2)
	if !strings.HasSuffix(m2.Snapshot, ".pgdump") || m2.SnapshotOf != 1 {
		t.Fatalf("generation 2's snapshot = %q of generation %d, want a pg_dump archive of generation 1", m2.Snapshot, m2.SnapshotOf)
	}
	if fi, err := os.Stat(m2.Snapshot); err != nil || fi.Size() == 0 {
		t.Fatalf("generation 2's snapshot: %v", err)
	}
	sql("SET ROLE bitpoll", "INSERT INTO polls_poll (slug, title, created, note) VALUES ('after', 'After the upgrade', now(), 'a note')")

	r = e.must("rollback")
	if !strings.Contains(r.stdout, "reversed migrations: polls.0002_poll_note") {
		t.Errorf("rollback printed:\n%s\nwant 0002 reversed", r.stdout)
	}
	if got, rows := migrations(), polls(); got != "0001_initial" || rows != "before,after" {
		t.Errorf("after the rollback, migrations %q and polls %q, want 0001_initial and before,after", got, rows)
	}

	e.must(append([]string{"upgrade"}, v3...)...)
	if got := migrations(); got != "0001_initial,0002_poll_note,0003_remove_poll_note,0004_vote" {
		t.Fatalf("after the upgrade to 1.0.3, polls migrations = %q", got)
	}
	m3 := e.meta(3)
	if m3.SnapshotOf != 1 || !strings.HasSuffix(m3.Snapshot, ".pgdump") {
		t.Fatalf("generation 3's snapshot = %q of generation %d, want one of generation 1", m3.Snapshot, m3.SnapshotOf)
	}
	sql("SET ROLE bitpoll", "INSERT INTO polls_poll (slug, title, created) VALUES ('dropped', 'After the drop', now())",
		"INSERT INTO polls_vote (poll_id, choice) SELECT id, 'yes' FROM polls_poll WHERE slug = 'dropped'")
	state := func() string { return migrations() + "/" + polls() }
	before := state()
	r = e.cli("rollback", "--to", "2")
	if r.code != exitFailure || !strings.Contains(r.stderr, "polls.0003_remove_poll_note") || !strings.Contains(r.stderr, "RemoveField") ||
		!strings.Contains(r.stderr, "rollback --to 1 --restore-snapshot") {
		t.Errorf("rollback across a RemoveField = exit %d, stderr:\n%s\nwant a refusal naming polls.0003_remove_poll_note and offering --restore-snapshot", r.code, r.stderr)
	}
	if got := state(); got != before || e.current() != 3 {
		t.Errorf("the refused rollback changed something: database %q (want %q), current %d (want 3)", got, before, e.current())
	}

	r = e.must("rollback", "--to", "1", "--restore-snapshot")
	if e.current() != 1 {
		t.Errorf("current = %d after --restore-snapshot, want 1", e.current())
	}
	if got := state(); got != "0001_initial/before,after" {
		t.Errorf("after --restore-snapshot, the database = %q, want generation 1's schema and the snapshot's polls", got)
	}
	if got := sql("SELECT count(*) FROM information_schema.columns WHERE table_name = 'polls_poll' AND column_name = 'note'"); got != "0" {
		t.Errorf("after --restore-snapshot polls_poll still has the note column")
	}
	if got := sql("SELECT count(*) FROM pg_tables WHERE tablename = 'polls_vote'"); got != "0" {
		t.Errorf("after --restore-snapshot the table polls_vote, made after the snapshot, is still there")
	}
	kept, _ := filepath.Glob(filepath.Join(filepath.Dir(m3.Snapshot), "replaced-*.pgdump"))
	if len(kept) != 1 || !strings.Contains(r.stdout, "kept at "+kept[0]) {
		t.Fatalf("the replaced database = %q, want one pg_dump archive beside the snapshots, named in the output:\n%s", kept, r.stdout)
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
	if got := srv.SQL(t, "kept", "SELECT string_agg(slug, ',' ORDER BY id) FROM polls_poll", "SELECT count(*) FROM polls_vote"); got != "before,after,dropped\n1" {
		t.Errorf("the kept archive holds %q, want polls before,after,dropped and 1 vote (the database the restore replaced)", got)
	}
	// The app serves the restored database: a rerun of the same switch
	// has nothing left to do, and the gate's checks found no drift.
	if st := e.stamps(); len(st) != 1 || !strings.Contains(st[0], filepath.Base(e.meta(1).StorePath)) {
		t.Errorf("migration stamps after the restore = %q, want generation 1's alone", st)
	}

	// gc keeps current (1) and previous (3) and frees generation 2 with
	// its snapshot; the kept archive is the admin's and stays.
	r = e.must("gc", "--keep", "1")
	if _, err := os.Stat(m2.Snapshot); err == nil {
		t.Errorf("gc kept generation 2's snapshot %s:\n%s", m2.Snapshot, r.stdout)
	}
	for _, keep := range []string{m3.Snapshot, kept[0]} {
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("gc removed %s, which it must keep: %v", keep, err)
		}
	}
}

// usePostgres writes the config and the password secret of a site on the
// PostgreSQL database at url.
func (e *genEnv) usePostgres(url, password string) {
	e.t.Helper()
	cfg := "base_url = \"http://localhost:8000\"\nallowed_hosts = [\"localhost\"]\n\n[listen]\naddress = \"127.0.0.1\"\nport = 8000\n\n" +
		"[database]\nurl = \"" + url + "\"\npassword = true\n"
	for path, data := range map[string]string{
		filepath.Join(e.root, "etc/bitpoll/bitpoll.toml"):         cfg,
		filepath.Join(e.layout.SecretsDir(), shim.DBPasswordFile): password + "\n",
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			e.t.Fatal(err)
		}
	}
}

// pgVersion locks src as v with the PostgreSQL driver and returns the
// build flags for it.
func (e *genEnv) pgVersion(src, v string) []string {
	e.t.Helper()
	l := testkit.LockFixtureTree(e.t, src, v, e.target, resolve.DefaultExtra...)
	if !slices.ContainsFunc(l.Packages, func(p lockfile.Package) bool { return p.Name == "psycopg-binary" }) {
		e.t.Fatalf("the lock of %s has no psycopg-binary wheel, so Django could not reach PostgreSQL", v)
	}
	return []string{"--lock", testkit.WriteLock(e.t, l), "--app-source", src, "--python", e.python}
}

// TestPostgresHostsUpgradeAtOnce runs two app hosts (two roots) of one
// site on one PostgreSQL database and upgrades both at once across a
// migration: each host's migrate waits on the shim's advisory lock
// (held here first, so that both are seen waiting), then one applies the
// migration and the other finds it applied. django_migrations holds it
// exactly once, and both hosts serve the new generation.
func TestPostgresHostsUpgradeAtOnce(t *testing.T) {
	srv := pgtest.Start(t)
	url := srv.CreateDatabase(t, "bitpoll", "pw-of-bitpoll")
	hosts := []*genEnv{newGenEnv(t), newGenEnv(t)}
	for _, h := range hosts {
		h.usePostgres(url, "pw-of-bitpoll")
	}
	v1 := hosts[0].pgVersion(testkit.FixtureApp(), "1.0.0")
	v2 := hosts[0].pgVersion(testkit.FixtureVariant(t, true, testkit.AddNote), "1.0.2")
	for _, h := range hosts {
		h.must(append([]string{"install"}, v1...)...)
	}
	sql := func(stmts ...string) string { t.Helper(); return srv.SQL(t, "bitpoll", stmts...) }
	waiting := func() string {
		return sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
	}

	release := srv.Hold(t, "bitpoll", fmt.Sprintf("SELECT pg_advisory_lock(%d)", shim.MigrateLockKey))
	results := make([]result, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runCLI(t, append([]string{"--root", h.root, "upgrade"}, v2...)...)
		}()
	}
	deadline := time.Now().Add(3 * time.Minute)
	for waiting() != "2" {
		if time.Now().After(deadline) {
			release()
			wg.Wait()
			t.Fatalf("the two upgrades never both waited for the migration lock; they ended with %+v", results)
		}
		time.Sleep(200 * time.Millisecond)
	}
	release()
	wg.Wait()
	for i, r := range results {
		if r.code != exitOK {
			t.Fatalf("host %d's upgrade: exit %d\nstdout:\n%s\nstderr:\n%s", i+1, r.code, r.stdout, r.stderr)
		}
	}
	if got := sql("SELECT string_agg(name, ',' ORDER BY id) FROM django_migrations WHERE app = 'polls'"); got != "0001_initial,0002_poll_note" {
		t.Errorf("django_migrations of polls = %q, want each migration once: 0001_initial,0002_poll_note", got)
	}
	for i, h := range hosts {
		if m := h.meta(2); !slices.Contains(m.Migrations["polls"], "0002_poll_note") {
			t.Errorf("host %d's generation 2 records the polls migrations %q, want 0002_poll_note among them", i+1, m.Migrations["polls"])
		}
	}
}
