package systest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/internal/nspawn"
	"github.com/bitpoll-install/bitpoll-install/internal/pgtest"
	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/resolve"
	"github.com/bitpoll-install/bitpoll-install/shim"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// TestPostgresSnapshotInContainer runs the fixture app as the hardened
// service of a booted trixie against a real PostgreSQL server on the
// host's loopback (the container shares the host's network), with the
// password as a credential: the migrations run in the service's sandbox,
// and bitpoll-install snapshots with trixie's own pg_dump, a newer major
// version than the server's. A rollback reverses a migration with the
// newer code in the sandbox; a rollback across a RemoveField is refused;
// --restore-snapshot restores the snapshot with the service stopped, keeps
// the replaced database as a pg_dump archive, and the older generation
// serves the restored polls; gc frees a removed generation's snapshot.
func TestPostgresSnapshotInContainer(t *testing.T) {
	rootfs := nspawn.Rootfs(t)
	testkit.NeedNetwork(t)
	srv := pgtest.Start(t)
	dburl := srv.CreateDatabase(t, "bitpoll", "pw-in-a-credential")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	host := t.TempDir()
	if err := os.Rename(testkit.BuildCLI(t), filepath.Join(host, "bitpoll-install")); err != nil {
		t.Fatal(err)
	}
	binds := []nspawn.Bind{{Host: host, Path: "/srv/test"}}
	trees := []string{testkit.FixtureApp(), testkit.FixtureVariant(t, true, testkit.AddNote), testkit.FixtureVariant(t, false, testkit.AddNote, testkit.DropNote)}
	for i, dir := range trees {
		l := testkit.LockFixtureTree(t, dir, fmt.Sprintf("1.0.%d", i), "cp313-x86_64", resolve.DefaultExtra...)
		if err := lockfile.WriteFile(filepath.Join(host, fmt.Sprintf("v%d.lock", i)), l); err != nil {
			t.Fatal(err)
		}
		binds = append(binds, nspawn.Bind{Host: dir, Path: fmt.Sprintf("/srv/app%d", i)})
	}
	m, base := pgMachine(ctx, t, nspawn.Options{Rootfs: rootfs, Binds: binds}, "bitpoll-pg", srv, dburl, "pw-in-a-credential")
	bpi := func(args ...string) ([]byte, error) {
		return m.Exec(ctx, append([]string{"/srv/test/bitpoll-install"}, args...)...)
	}
	version := func(i int) []string {
		return []string{"--lock", fmt.Sprintf("/srv/test/v%d.lock", i), "--app-source", fmt.Sprintf("/srv/app%d", i), "--python", "/usr/bin/python3"}
	}
	meta := func(n int) store.Meta {
		t.Helper()
		st, err := store.Open(store.Layout{Root: m.Upper("/")})
		if err != nil {
			t.Fatal(err)
		}
		mt, err := st.ReadMeta(n)
		if err != nil {
			t.Fatal(err)
		}
		return mt
	}
	// Paths in the metadata are the machine's; read them through the
	// overlay.
	inside := func(p string) string { return m.Upper(p) }
	sql := func(q string) string { t.Helper(); return srv.SQL(t, "bitpoll", q) }
	polls := func() string { return sql("SELECT coalesce(string_agg(slug, ',' ORDER BY id), '') FROM polls_poll") }

	if out, err := bpi(append([]string{"install"}, version(0)...)...); err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	get200(t, base)
	createFixturePoll(t, base, "before")
	if got := sql("SELECT tableowner FROM pg_tables WHERE tablename = 'polls_poll'"); got != "bitpoll" {
		t.Errorf("polls_poll belongs to %q, want bitpoll", got)
	}

	out, err := bpi(append([]string{"--json", "upgrade"}, version(1)...)...)
	if err != nil {
		t.Fatalf("upgrade to 1.0.1: %v\n%s", err, out)
	}
	t.Logf("upgrade with a pg_dump snapshot: %s", phases(out))
	m2 := meta(2)
	if !strings.HasSuffix(m2.Snapshot, ".pgdump") || m2.SnapshotOf != 1 {
		t.Fatalf("generation 2's snapshot = %q of generation %d, want a pg_dump archive of generation 1", m2.Snapshot, m2.SnapshotOf)
	}
	fi, err := os.Stat(inside(m2.Snapshot))
	if err != nil {
		t.Fatalf("generation 2's snapshot: %v", err)
	}
	t.Logf("snapshot %s: %d bytes", m2.Snapshot, fi.Size())
	createFixturePoll(t, base, "after")

	// Back to 1.0.0: 0002 is reversed by 1.0.1's code in the sandbox.
	if out, err := bpi("rollback"); err != nil {
		t.Fatalf("rollback: %v\n%s", err, out)
	}
	checkServing(ctx, t, m, 1)
	if got := polls(); got != "before,after" {
		t.Errorf("after the rollback the polls are %q, want before,after", got)
	}

	if out, err := bpi(append([]string{"upgrade"}, version(2)...)...); err != nil {
		t.Fatalf("upgrade to 1.0.2: %v\n%s", err, out)
	}
	checkServing(ctx, t, m, 3)
	m3 := meta(3)
	if m3.SnapshotOf != 1 || !strings.HasSuffix(m3.Snapshot, ".pgdump") {
		t.Fatalf("generation 3's snapshot = %q of generation %d, want a pg_dump archive of generation 1", m3.Snapshot, m3.SnapshotOf)
	}
	createFixturePoll(t, base, "dropped")
	if got := polls(); got != "before,after,dropped" {
		t.Fatalf("polls before the rollbacks = %q", got)
	}

	out, err = bpi("rollback", "--to", "2")
	if err == nil || !strings.Contains(string(out), "polls.0003_remove_poll_note") || !strings.Contains(string(out), "rollback --to 1 --restore-snapshot") {
		t.Errorf("a rollback across a RemoveField = %v, want a refusal naming polls.0003_remove_poll_note and offering --restore-snapshot:\n%s", err, out)
	}
	if got := polls(); got != "before,after,dropped" {
		t.Errorf("the refused rollback changed the polls to %q", got)
	}
	checkServing(ctx, t, m, 3)

	begin := time.Now()
	out, err = bpi("--json", "rollback", "--to", "1", "--restore-snapshot")
	if err != nil {
		t.Fatalf("rollback --restore-snapshot: %v\n%s", err, out)
	}
	t.Logf("rollback --restore-snapshot in %v: %s", time.Since(begin).Round(time.Millisecond), phases(out))
	checkServing(ctx, t, m, 1)
	if got := polls(); got != "before,after" {
		t.Errorf("after --restore-snapshot the polls are %q, want before,after (the snapshot's)", got)
	}
	page200(t, base+"/poll/after/")
	if status, _ := testkit.FetchPage(t, &http.Client{Timeout: 30 * time.Second}, base+"/poll/dropped/"); status != http.StatusNotFound {
		t.Errorf("after restoring the snapshot, the poll made after it answers %d, want 404", status)
	}
	kept, _ := filepath.Glob(filepath.Join(filepath.Dir(inside(m3.Snapshot)), "replaced-*.pgdump"))
	if len(kept) != 1 || !strings.Contains(string(out), strings.TrimPrefix(kept[0], m.Upper(""))) {
		t.Errorf("the replaced database: %q, want one pg_dump archive, named in the output:\n%s", kept, out)
	}

	// gc keeps current (1) and the generation it came from (3), and frees
	// generation 2 with its snapshot.
	out, err = bpi("gc", "--keep", "0")
	if err != nil {
		t.Fatalf("gc: %v\n%s", err, out)
	}
	if _, err := os.Stat(inside(m2.Snapshot)); err == nil {
		t.Errorf("gc kept generation 2's snapshot %s:\n%s", m2.Snapshot, out)
	}
	for _, keep := range append([]string{inside(m3.Snapshot)}, kept...) {
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("gc removed %s: %v", keep, err)
		}
	}
	page200(t, base+"/poll/before/")
}

// TestPostgresTwoHostsUpgradeAtOnce boots two trixie machines as two app
// hosts of one site on one real PostgreSQL server, installs the fixture
// app on both, then upgrades both at once across a migration. The test
// holds the shim's migration lock first, so that both hosts' migrations
// are seen waiting on it; once it lets go, one host applies the migration
// and the other finds it applied: django_migrations holds it exactly
// once, and both serve the new generation.
func TestPostgresTwoHostsUpgradeAtOnce(t *testing.T) {
	rootfs := nspawn.Rootfs(t)
	testkit.NeedNetwork(t)
	srv := pgtest.Start(t)
	dburl := srv.CreateDatabase(t, "bitpoll", "pw-of-two-hosts")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	shared := t.TempDir()
	if err := os.Rename(testkit.BuildCLI(t), filepath.Join(shared, "bitpoll-install")); err != nil {
		t.Fatal(err)
	}
	binds := []nspawn.Bind{{Host: shared, Path: "/srv/test"}}
	for i, dir := range []string{testkit.FixtureApp(), testkit.FixtureVariant(t, true, testkit.AddNote)} {
		l := testkit.LockFixtureTree(t, dir, fmt.Sprintf("1.0.%d", i), "cp313-x86_64", resolve.DefaultExtra...)
		if err := lockfile.WriteFile(filepath.Join(shared, fmt.Sprintf("v%d.lock", i)), l); err != nil {
			t.Fatal(err)
		}
		binds = append(binds, nspawn.Bind{Host: dir, Path: fmt.Sprintf("/srv/app%d", i)})
	}
	version := func(i int) []string {
		return []string{"--lock", fmt.Sprintf("/srv/test/v%d.lock", i), "--app-source", fmt.Sprintf("/srv/app%d", i), "--python", "/usr/bin/python3"}
	}
	type appHost struct {
		m    *nspawn.Machine
		base string
	}
	var hosts []appHost
	for _, name := range []string{"bitpoll-pg-a", "bitpoll-pg-b"} {
		m, base := pgMachine(ctx, t, nspawn.Options{Rootfs: rootfs, Binds: binds}, name, srv, dburl, "pw-of-two-hosts")
		if out, err := m.Exec(ctx, append([]string{"/srv/test/bitpoll-install", "install"}, version(0)...)...); err != nil {
			t.Fatalf("install on %s: %v\n%s", name, err, out)
		}
		get200(t, base)
		hosts = append(hosts, appHost{m, base})
	}
	createFixturePoll(t, hosts[0].base, "made-on-a")
	page200(t, hosts[1].base+"/poll/made-on-a/")
	sql := func(q string) string { t.Helper(); return srv.SQL(t, "bitpoll", q) }

	release := srv.Hold(t, "bitpoll", fmt.Sprintf("SELECT pg_advisory_lock(%d)", shim.MigrateLockKey))
	type result struct {
		out []byte
		err error
	}
	ended := func(rs []result) string {
		var b strings.Builder
		for i, r := range rs {
			fmt.Fprintf(&b, "\nhost %d: %v\n%s", i, r.err, r.out)
		}
		return b.String()
	}
	results := make([]result, len(hosts))
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for i, h := range hosts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := h.m.Exec(ctx, append([]string{"/srv/test/bitpoll-install", "upgrade"}, version(1)...)...)
				results[i] = result{out, err}
			}()
		}
		wg.Wait()
	}()
	deadline := time.Now().Add(5 * time.Minute)
	for sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") != "2" {
		select {
		case <-done:
			release()
			t.Fatalf("both upgrades ended without both waiting for the migration lock:%s", ended(results))
		default:
		}
		if time.Now().After(deadline) {
			release()
			<-done
			t.Fatalf("the two upgrades never both waited for the migration lock:%s", ended(results))
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("both hosts' migrations wait on the advisory lock %d", shim.MigrateLockKey)
	release()
	<-done
	for i, r := range results {
		if r.err != nil {
			state, _ := hosts[i].m.Exec(ctx, "sh", "-c", "ls -lnd /var/lib/private/bitpoll /var/lib/private/bitpoll/*; ls -ln /var/lib/private/bitpoll/migrated; journalctl -q --no-pager -u 'bitpoll-migrate@*' | tail -40")
			t.Fatalf("upgrade on host %d: %v\n%s\nthe state directory and the migrations' journal:\n%s", i, r.err, r.out, state)
		}
	}
	if got := sql("SELECT string_agg(name, ',' ORDER BY id) FROM django_migrations WHERE app = 'polls'"); got != "0001_initial,0002_poll_note" {
		t.Errorf("django_migrations of polls = %q, want each once: 0001_initial,0002_poll_note", got)
	}
	for _, h := range hosts {
		checkServing(ctx, t, h.m, 2)
		page200(t, h.base+"/poll/made-on-a/")
	}
}

// pgMachine boots a machine as an app host of the PostgreSQL database at
// dburl on srv: PostgreSQL's client tools installed into its own overlay
// (the cached tree stays as it is), a config on a port of its own (the
// machines share the host's network) and the password as a secret.
func pgMachine(ctx context.Context, t *testing.T, o nspawn.Options, name string, srv *pgtest.Server, dburl, password string) (*nspawn.Machine, string) {
	t.Helper()
	m := nspawn.Boot(ctx, t, o, name)
	start := time.Now()
	if out, err := m.Exec(ctx, "sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-client >/dev/null"); err != nil {
		t.Fatalf("install postgresql-client in %s: %v\n%s", name, err, out)
	}
	ver, _ := m.Exec(ctx, "sh", "-c", "ls /usr/lib/postgresql")
	t.Logf("postgresql-client %s installed in %s in %v; the server is PostgreSQL %s", strings.TrimSpace(string(ver)), name, time.Since(start).Round(time.Second), srv.Version)
	port := testkit.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	writeConfig(t, m, fmt.Sprintf("base_url = %q\nallowed_hosts = [\"127.0.0.1\", \"localhost\"]\n\n[listen]\naddress = \"127.0.0.1\"\nport = %d\n\n[database]\nurl = %q\npassword = true\n", base, port, dburl))
	secret := m.Upper("/etc/bitpoll/secrets/db_password")
	if err := os.MkdirAll(filepath.Dir(secret), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secret, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return m, base
}
