package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/service"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// raisesAtImport makes the fixture app fail at import.
var raisesAtImport = map[string]string{
	"fixtureapp/urls.py": "raise RuntimeError(\"this generation is broken on purpose\")\n",
}

// genEnv is one --root trial of generations of the fixture app.
type genEnv struct {
	t      *testing.T
	root   string
	python string
	target string
	layout store.Layout
}

func newGenEnv(t *testing.T) *genEnv {
	testkit.NeedNetwork(t)
	it := testkit.HostPython(t)
	root := t.TempDir()
	return &genEnv{t: t, root: root, python: it.Path, target: testkit.Target(it), layout: store.Layout{Root: root}}
}

// version locks src as version and returns the build flags for it.
func (e *genEnv) version(src, version string) []string {
	e.t.Helper()
	l := testkit.LockFixtureTree(e.t, src, version, e.target, "gunicorn==27.0.1", "whitenoise==6.12.0")
	return []string{"--lock", testkit.WriteLock(e.t, l), "--app-source", src, "--python", e.python}
}

func (e *genEnv) cli(args ...string) result {
	e.t.Helper()
	return runCLI(e.t, append([]string{"--root", e.root}, args...)...)
}

func (e *genEnv) must(args ...string) result {
	e.t.Helper()
	r := e.cli(args...)
	if r.code != exitOK {
		e.t.Fatalf("bitpoll-install %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func (e *genEnv) db() string { return filepath.Join(e.root, "var/lib/bitpoll/db.sqlite3") }

// sql runs statements on the database with Python's sqlite3 and returns
// the rows of the last one as JSON.
func (e *genEnv) sql(stmts ...string) string {
	e.t.Helper()
	script := "import json, sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nrows = None\nfor s in sys.argv[2:]:\n    rows = c.execute(s).fetchall()\nc.commit()\nprint(json.dumps(rows))\n"
	out, err := exec.Command(e.python, append([]string{"-c", script, e.db()}, stmts...)...).CombinedOutput()
	if err != nil {
		e.t.Fatalf("sql %q: %v\n%s", stmts, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (e *genEnv) pollMigrations() string {
	return e.sql("select name from django_migrations where app = 'polls' order by name")
}

func (e *genEnv) dbHash() [32]byte {
	e.t.Helper()
	data, err := os.ReadFile(e.db())
	if err != nil {
		e.t.Fatal(err)
	}
	return sha256.Sum256(data)
}

func (e *genEnv) current() int {
	e.t.Helper()
	st, err := store.Open(e.layout)
	if err != nil {
		e.t.Fatal(err)
	}
	g, ok, err := st.CurrentGeneration()
	if err != nil || !ok {
		e.t.Fatalf("current generation: %v, %v", ok, err)
	}
	return g.N
}

func (e *genEnv) meta(n int) store.Meta {
	e.t.Helper()
	st, err := store.Open(e.layout)
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := st.ReadMeta(n)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// stamps are the migration stamps left in the state directory.
func (e *genEnv) stamps() []string {
	entries, _ := os.ReadDir(filepath.Join(e.root, "var/lib/bitpoll/migrated"))
	var out []string
	for _, d := range entries {
		out = append(out, d.Name())
	}
	return out
}

// TestUpgradeAndRollback walks the fixture app through generations with
// --root, where the migrations and the health gate run directly: an
// upgrade applies a migration after a snapshot, a rollback reverses it
// with the newer code and keeps the rows written since, a rollback across
// a dropped column is refused by name with nothing changed, and
// --restore-snapshot then brings back the database from before and keeps
// the replaced one beside it.
func TestUpgradeAndRollback(t *testing.T) {
	e := newGenEnv(t)
	v1 := e.version(testkit.FixtureApp(), "1.0.0")
	v2 := e.version(testkit.FixtureVariant(t, true, testkit.AddNote), "1.0.2")
	v3 := e.version(testkit.FixtureVariant(t, false, testkit.AddNote, testkit.DropNote), "1.0.3")

	e.must(append([]string{"install"}, v1...)...)
	if got := e.pollMigrations(); got != `[["0001_initial"]]` {
		t.Fatalf("after install, polls migrations = %s, want 0001 only", got)
	}
	e.sql("insert into polls_poll (slug, title, created) values ('before', 'Before the upgrade', datetime('now'))")

	r := e.must(append([]string{"upgrade"}, v2...)...)
	for _, want := range []string{"applied migrations: polls.0002_poll_note", "generation 2 is now current (was 1)", "snapshot of the database:"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("upgrade printed:\n%s\nwant %q", r.stdout, want)
		}
	}
	if got := e.pollMigrations(); got != `[["0001_initial"], ["0002_poll_note"]]` {
		t.Errorf("after the upgrade, polls migrations = %s, want 0001 and 0002", got)
	}
	m2 := e.meta(2)
	if !slices.Equal(m2.Migrations["polls"], []string{"0001_initial", "0002_poll_note"}) || m2.MigratedAt == nil || m2.AppVersion != "1.0.2" {
		t.Errorf("generation 2 records %+v, want polls 0001 and 0002, a migration time and version 1.0.2", m2)
	}
	if m2.Snapshot == "" || m2.SnapshotOf != 1 {
		t.Errorf("generation 2's snapshot = %q of generation %d, want one of generation 1", m2.Snapshot, m2.SnapshotOf)
	} else if _, err := os.Stat(m2.Snapshot); err != nil {
		t.Errorf("generation 2's snapshot: %v", err)
	}
	e.sql("insert into polls_poll (slug, title, created, note) values ('after', 'After the upgrade', datetime('now'), 'a note')")

	r = e.must("rollback")
	if !strings.Contains(r.stdout, "reversed migrations: polls.0002_poll_note") || !strings.Contains(r.stdout, "generation 1 is now current (was 2)") {
		t.Errorf("rollback printed:\n%s\nwant 0002 reversed and generation 1 current", r.stdout)
	}
	if got := e.pollMigrations(); got != `[["0001_initial"]]` {
		t.Errorf("after the rollback, polls migrations = %s, want 0001 only", got)
	}
	if got := e.sql("select slug from polls_poll order by id"); got != `[["before"], ["after"]]` {
		t.Errorf("after the rollback, polls = %s, want the ones from before and after the upgrade", got)
	}
	if e.current() != 1 {
		t.Errorf("current = %d after the rollback, want 1", e.current())
	}
	if st := e.stamps(); len(st) != 1 || !strings.Contains(st[0], filepath.Base(e.meta(1).StorePath)) {
		t.Errorf("migration stamps after the rollback = %q, want generation 1's alone", st)
	}

	e.must(append([]string{"upgrade"}, v3...)...)
	if got := e.pollMigrations(); got != `[["0001_initial"], ["0002_poll_note"], ["0003_remove_poll_note"]]` {
		t.Fatalf("after the upgrade to 1.0.3, polls migrations = %s", got)
	}
	e.sql("insert into polls_poll (slug, title, created) values ('dropped', 'After the drop', datetime('now'))")
	before := e.dbHash()
	r = e.cli("rollback", "--to", "2")
	if r.code != exitFailure || !strings.Contains(r.stderr, "polls.0003_remove_poll_note") || !strings.Contains(r.stderr, "RemoveField") ||
		!strings.Contains(r.stderr, "rollback --to 1 --restore-snapshot") {
		t.Errorf("rollback across a RemoveField = exit %d, stderr:\n%s\nwant a refusal naming polls.0003_remove_poll_note and offering --restore-snapshot", r.code, r.stderr)
	}
	if e.dbHash() != before || e.current() != 3 {
		t.Errorf("the refused rollback changed something: database changed %v, current %d (want 3)", e.dbHash() != before, e.current())
	}

	// Killed once the snapshot is back: the rerun keeps the database
	// the first run replaced, and names it, not the restored copy.
	killedAt(t, service.PhaseRestored, []string{"--root", e.root, "rollback", "--to", "1", "--restore-snapshot"})
	r = e.must("rollback", "--to", "1", "--restore-snapshot")
	if e.current() != 1 {
		t.Errorf("current = %d after --restore-snapshot, want 1", e.current())
	}
	if got := e.sql("select slug from polls_poll order by id"); got != `[["before"], ["after"]]` {
		t.Errorf("after --restore-snapshot, polls = %s, want the snapshot's (before the 1.0.3 upgrade)", got)
	}
	kept, _ := filepath.Glob(e.db() + ".replaced-*")
	if len(kept) != 1 || !strings.Contains(r.stdout, kept[0]) {
		t.Fatalf("the replaced database = %q, want one file beside the restored one, named in the output:\n%s", kept, r.stdout)
	}
	if out, err := exec.Command(e.python, "-c", "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(\"select slug from polls_poll where slug = 'dropped'\").fetchall())", kept[0]).CombinedOutput(); err != nil || !strings.Contains(string(out), "dropped") {
		t.Errorf("the kept database lacks the poll written after the drop: %v %s", err, out)
	}

	type genLine struct {
		Generation struct {
			N       int  `json:"generation"`
			Current bool `json:"current"`
			Own     int  `json:"own_bytes"`
		} `json:"generation"`
	}
	var gens []genLine
	r = e.must("--json", "generations")
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var g genLine
		if err := json.Unmarshal([]byte(line), &g); err != nil {
			t.Fatalf("generations --json line %q: %v", line, err)
		}
		gens = append(gens, g)
	}
	if len(gens) != 3 || !gens[0].Generation.Current || gens[1].Generation.Current || gens[0].Generation.Own == 0 {
		t.Errorf("generations --json = %+v, want 3, generation 1 current, sizes measured", gens)
	}
}

// TestUpgradeGateRefusesBrokenApp upgrades to code that raises at
// import: the gate refuses it with the reason, the database is byte for
// byte what it was, and current stays.
func TestUpgradeGateRefusesBrokenApp(t *testing.T) {
	e := newGenEnv(t)
	e.must(append([]string{"install"}, e.version(testkit.FixtureApp(), "1.0.0")...)...)
	e.sql("insert into polls_poll (slug, title, created) values ('kept', 'Kept', datetime('now'))")
	before := e.dbHash()
	r := e.cli(append([]string{"upgrade"}, e.version(testkit.FixtureVariant(t, true, testkit.AddNote, raisesAtImport), "1.0.9")...)...)
	if r.code != exitFailure || !strings.Contains(r.stderr, "this generation is broken on purpose") || !strings.Contains(r.stderr, "was not switched to") {
		t.Errorf("upgrade to a broken app = exit %d, stderr:\n%s\nwant a refusal with the app's error", r.code, r.stderr)
	}
	if e.dbHash() != before {
		t.Error("the refused upgrade changed the database")
	}
	if e.current() != 1 {
		t.Errorf("current = %d after the refused upgrade, want 1", e.current())
	}
	st, _ := store.Open(e.layout)
	if _, ok, _ := st.ReadPending(); ok {
		t.Error("a refused upgrade left its switch record behind")
	}
	if gens, _ := st.Generations(); len(gens) != 1 {
		t.Errorf("after a refused upgrade there are %d generations, want the one that serves", len(gens))
	}
}

// TestGCKeepsWhatItMust lists the store before and after gc: the current
// and previous generations and what they use stay; older generations,
// their store paths, cache entries and snapshots go; --dry-run frees
// nothing.
func TestGCKeepsWhatItMust(t *testing.T) {
	e := newGenEnv(t)
	// Generation 1 on another Django, so that a wheel goes with it.
	v1 := testkit.FixtureVariant(t, false)
	if err := os.WriteFile(filepath.Join(v1, "requirements.txt"), []byte("asgiref==3.13.0\ndjango==5.2.18\nsqlparse==0.6.1\nwhitenoise==6.12.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.must(append([]string{"install"}, e.version(v1, "1.0.0")...)...)
	e.must(append([]string{"upgrade"}, e.version(testkit.FixtureVariant(t, true, testkit.AddNote), "1.0.2")...)...)
	e.must(append([]string{"upgrade"}, e.version(testkit.FixtureVariant(t, true, testkit.AddNote, map[string]string{"fixtureapp/v3.txt": "3"}), "1.0.3")...)...)
	list := func() []string {
		var out []string
		for _, dir := range []string{"opt/bitpoll/store", "opt/bitpoll/generations", "var/cache/bitpoll-install/wheels-v1", "var/cache/bitpoll-install/unpacked-v2", "var/lib/bitpoll/snapshots"} {
			entries, _ := os.ReadDir(filepath.Join(e.root, dir))
			for _, d := range entries {
				if !strings.HasPrefix(d.Name(), ".") {
					out = append(out, dir+"/"+d.Name())
				}
			}
		}
		return out
	}
	before := list()
	m1 := filepath.Base(e.meta(1).StorePath)
	r := e.must("gc", "--keep", "0", "--dry-run")
	if !strings.Contains(r.stdout, "would remove generation 1") || strings.Contains(r.stdout, "generation 2\n") {
		t.Errorf("gc --dry-run printed:\n%s\nwant generation 1 listed and 2 (previous) kept", r.stdout)
	}
	if after := list(); !slices.Equal(after, before) {
		t.Errorf("gc --dry-run removed %q", diff(before, after))
	}
	r = e.must("gc", "--keep", "0")
	after := list()
	gone := diff(before, after)
	t.Logf("gc freed: %s\nremoved: %q", lastLineOf(r.stdout), gone)
	for _, want := range []string{"opt/bitpoll/generations/1", "opt/bitpoll/generations/1.json", "opt/bitpoll/store/" + m1} {
		if !slices.Contains(gone, want) {
			t.Errorf("gc kept %s, want it removed", want)
		}
	}
	var djangoGone bool
	for _, p := range gone {
		if strings.HasPrefix(p, "var/cache/bitpoll-install/") {
			djangoGone = true
		}
		if strings.HasPrefix(p, "opt/bitpoll/generations/2") || strings.HasPrefix(p, "opt/bitpoll/generations/3") {
			t.Errorf("gc removed %s of the previous or current generation", p)
		}
	}
	if !djangoGone {
		t.Errorf("gc freed no cache entry, want generation 1's Django wheel freed; removed %q", gone)
	}
	if !strings.Contains(r.stdout, "freed ") {
		t.Errorf("gc printed:\n%s\nwant the bytes freed", r.stdout)
	}
	// What is left still serves: a rollback to generation 2 works.
	e.must("rollback")
}

func diff(before, after []string) []string {
	var out []string
	for _, p := range before {
		if !slices.Contains(after, p) {
			out = append(out, p)
		}
	}
	return out
}

func lastLineOf(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestConcurrentUpgradesWait holds the store lock as another
// bitpoll-install would: --no-wait fails at once naming the holder, and a
// plain upgrade says whom it waits for and finishes once the lock is free.
func TestConcurrentUpgradesWait(t *testing.T) {
	e := newGenEnv(t)
	e.must(append([]string{"install"}, e.version(testkit.FixtureApp(), "1.0.0")...)...)
	v2 := e.version(testkit.FixtureVariant(t, true, testkit.AddNote), "1.0.2")
	st, err := store.Open(e.layout)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := st.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r := e.cli(append([]string{"upgrade", "--no-wait"}, v2...)...)
	if r.code != exitFailure || !strings.Contains(r.stderr, "held by process") || e.current() != 1 {
		t.Errorf("upgrade --no-wait with the lock held = exit %d, stderr:\n%s\nwant a failure naming the holder", r.code, r.stderr)
	}
	var wg sync.WaitGroup
	var waited result
	wg.Add(1)
	go func() {
		defer wg.Done()
		waited = e.cli(append([]string{"upgrade"}, v2...)...)
	}()
	time.Sleep(2 * time.Second)
	if e.current() != 1 {
		t.Error("an upgrade went ahead while the store lock was held")
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if waited.code != exitOK || !strings.Contains(waited.stderr, "waiting for process") || e.current() != 2 {
		t.Errorf("the waiting upgrade = exit %d, current %d, stderr:\n%s\nwant it to say it waits, then switch to 2", waited.code, e.current(), waited.stderr)
	}
}

// TestSwitchKilledAtEachPhase kills an upgrade, then a rollback, with
// SIGKILL as each reaches a phase of the switch. After each kill the
// store holds no partial path and the switch is on record; the rerun of
// the same command finishes it (and a rerun of rollback goes no further
// back than the interrupted one meant): current, the schema and the
// stamps agree, and no record is left.
func TestSwitchKilledAtEachPhase(t *testing.T) {
	if testing.Short() {
		t.Skip("kills 12 switches; slow")
	}
	e := newGenEnv(t)
	v1 := e.version(testkit.FixtureApp(), "1.0.0")
	v2 := e.version(testkit.FixtureVariant(t, true, testkit.AddNote), "1.0.2")
	e.must(append([]string{"install"}, v1...)...)
	e.sql("insert into polls_poll (slug, title, created) values ('kept', 'Kept', datetime('now'))")
	up := []store.Phase{service.PhasePending, service.PhaseSnapshot, service.PhaseMigrated, service.PhaseGated, store.PhaseSwitched, service.PhaseCommitted}
	down := []store.Phase{service.PhasePending, service.PhaseSnapshot, service.PhaseGated, service.PhaseReversed, store.PhaseSwitched, service.PhaseCommitted}
	check := func(when string, gen int, migrations string) {
		t.Helper()
		checkStore(t, e.layout)
		if e.current() != gen {
			t.Errorf("%s: current = %d, want %d", when, e.current(), gen)
		}
		if got := e.pollMigrations(); got != migrations {
			t.Errorf("%s: polls migrations = %s, want %s", when, got, migrations)
		}
		if got := e.sql("select slug from polls_poll"); got != `[["kept"]]` {
			t.Errorf("%s: polls = %s, want the one poll", when, got)
		}
		st, _ := store.Open(e.layout)
		if _, ok, _ := st.ReadPending(); ok {
			t.Errorf("%s: the switch record is left", when)
		}
		if s := e.stamps(); len(s) != 1 || !strings.HasPrefix(s[0], filepath.Base(e.meta(gen).StorePath)) {
			t.Errorf("%s: stamps = %q, want generation %d's alone", when, s, gen)
		}
	}
	for i := range up {
		upArgs := append([]string{"--root", e.root, "upgrade"}, v2...)
		killedAt(t, up[i], upArgs)
		checkStore(t, e.layout)
		e.must(append([]string{"upgrade"}, v2...)...)
		check("upgrade killed at "+string(up[i])+", then run again", 2, `[["0001_initial"], ["0002_poll_note"]]`)

		killedAt(t, down[i], []string{"--root", e.root, "rollback", "--to", "1"})
		checkStore(t, e.layout)
		e.must("rollback", "--to", "1")
		check("rollback killed at "+string(down[i])+", then run again", 1, `[["0001_initial"]]`)
	}
}

// BenchmarkSwitch switches between two built generations of the same
// schema, back and forth, with --root: no migration runs, the gate does.
// It reports the switch itself (the rename of current and the record)
// beside the whole command and its health gate, whose gunicorn start is
// the peer the switch is measured against.
func BenchmarkSwitch(b *testing.B) {
	testkit.NeedNetwork(b)
	it := testkit.HostPython(b)
	root := b.TempDir()
	target := testkit.Target(it)
	version := func(src, v string) []string {
		l := testkit.LockFixtureTree(b, src, v, target, "gunicorn==27.0.1", "whitenoise==6.12.0")
		return []string{"--lock", testkit.WriteLock(b, l), "--app-source", src, "--python", it.Path}
	}
	other := b.TempDir()
	if err := os.CopyFS(other, os.DirFS(testkit.FixtureApp())); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "fixtureapp", "other.txt"), []byte("another tree, the same schema\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	cli := func(args ...string) map[string]any {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), append([]string{"--root", root, "--json"}, args...), &stdout, &stderr); code != exitOK {
			b.Fatalf("%v: exit %d\n%s", args, code, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
			b.Fatal(err)
		}
		return m
	}
	cli(append([]string{"install"}, version(testkit.FixtureApp(), "1.0.0")...)...)
	cli(append([]string{"upgrade"}, version(other, "1.0.1")...)...)
	var switchMS, gateMS, totalMS float64
	b.ResetTimer()
	for i := range b.N {
		to := "1"
		if i%2 == 1 {
			to = "2"
		}
		start := time.Now()
		m := cli("rollback", "--to", to)
		totalMS += float64(time.Since(start).Milliseconds())
		phases, _ := m["phases_ms"].(map[string]any)
		c, _ := phases[string(service.PhaseCommitted)].(float64)
		g, _ := phases[string(service.PhaseGated)].(float64)
		switchMS += c
		gateMS += g
	}
	b.ReportMetric(switchMS/float64(b.N), "switch-ms")
	b.ReportMetric(gateMS/float64(b.N), "gate-ms")
	b.ReportMetric(totalMS/float64(b.N), "command-ms")
}

// TestUpgradeRelocksAndConfigChanges covers the two other ways to a new
// generation: upgrade --app-version re-locks on the fly and shows what
// changes before it builds, and a changed config alone is rolled out as
// a generation of its own on the same store path.
func TestUpgradeRelocksAndConfigChanges(t *testing.T) {
	e := newGenEnv(t)
	v1 := e.version(testkit.FixtureApp(), "1.0.0")
	e.must(append([]string{"install"}, v1...)...)
	v2 := testkit.FixtureVariant(t, true, testkit.AddNote)
	r := e.must("upgrade", "--lock", v1[1], "--app-source", v2, "--app-version", "1.0.2", "--python", e.python)
	if !strings.Contains(r.stderr, "bitpoll 1.0.0 → 1.0.2") || !strings.Contains(r.stderr, "(no package changes)") {
		t.Errorf("upgrade --app-version printed:\n%s\nwant the app's change and the packages' before the build", r.stderr)
	}
	if e.current() != 2 || e.meta(2).AppVersion != "1.0.2" {
		t.Errorf("after upgrade --app-version: current %d at %q, want generation 2 at 1.0.2", e.current(), e.meta(2).AppVersion)
	}
	config := filepath.Join(e.root, "etc/bitpoll/bitpoll.toml")
	data, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(config, bytes.Replace(data, []byte("\nworkers = 2\n"), []byte("\nworkers = 3\n"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	r = e.must("upgrade", "--lock", v1[1], "--app-source", v2, "--app-version", "1.0.2", "--python", e.python)
	if e.meta(3).StorePath != e.meta(2).StorePath {
		t.Errorf("after a config change, generation 3 is on %s, want generation 2's store path %s", e.meta(3).StorePath, e.meta(2).StorePath)
	}
	// Text mode says what changed, and with --root what to run next.
	for _, want := range []string{
		"reused " + e.meta(2).StorePath + "\n",
		"changed " + filepath.Join(e.root, "etc/systemd/system/bitpoll@.service") + "\n",
		fmt.Sprintf("generation 3 is now current (was 2) for the changed config (%d files); the app is the same store path\n", strings.Count(r.stdout, "\nchanged ")),
		"systemd was left alone (--root " + e.root + "): the units are written to " + filepath.Join(e.root, "etc/systemd/system") +
			", nothing runs them; to serve this generation in the foreground, run 'bitpoll-install --root " + e.root +
			" run' with the same --lock and --app-source, and to put it under systemd, run install as root without --root\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("a config change printed:\n%s\nwant %q", r.stdout, want)
		}
	}
	if strings.Contains(r.stdout, "settings.json") {
		t.Errorf("a change of workers alone printed:\n%s\nwant no change of the settings file", r.stdout)
	}
	if !regexp.MustCompile(`(?m)^done in [0-9.]+ s: .*gate-passed [0-9.]+ s.*current-switched [0-9.]+ s`).MatchString(r.stdout) {
		t.Errorf("a config change printed:\n%s\nwant a last line with the time of each step", r.stdout)
	}
	t.Logf("a config change printed:\n%s\nand on standard error:\n%s", r.stdout, r.stderr)
	r = e.must("upgrade", "--lock", v1[1], "--app-source", v2, "--app-version", "1.0.2", "--python", e.python)
	if !strings.Contains(r.stdout, "generation 3 was already current; nothing changed") {
		t.Errorf("the same upgrade again printed:\n%s\nwant nothing changed", r.stdout)
	}
}
