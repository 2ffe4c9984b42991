package systest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/internal/nspawn"
	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/service"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// killStep is a phase at which a switch is killed, and what it must
// leave: where current points and which schema the database holds.
type killStep struct {
	phase store.Phase
	// unrecorded: the switch is not on record yet (nothing has changed
	// but the store); switched: current already points at the generation
	// switched to; migrated: the database already holds that generation's
	// schema.
	unrecorded, switched, migrated bool
}

// The phases of a switch under systemd, in the order they come (see
// service.Plan.run). An upgrade migrates before its gate and starts the
// new generation beside the old one before current moves; a rollback
// starts the older code first, stops the newer, and only then has the
// newer code reverse its migrations.
// killSteps are the phases a test kills at.
type killSteps struct{ build, upgrade, rollback []killStep }

var (
	// The first upgrade builds its store path and adds its generation
	// before it records the switch.
	buildSteps = []killStep{
		{phase: store.PhaseStored, unrecorded: true},
		{phase: store.PhaseLinked, unrecorded: true},
	}
	upgradeSteps = []killStep{
		{phase: service.PhasePending},
		{phase: service.PhaseSnapshot},
		{phase: service.PhaseMigrated, migrated: true},
		{phase: service.PhaseGated, migrated: true},
		{phase: service.PhaseStarted, migrated: true},
		{phase: store.PhaseSwitching, migrated: true},
		{phase: store.PhaseSwitched, switched: true, migrated: true},
		{phase: service.PhaseCommitted, switched: true, migrated: true},
		{phase: service.PhaseStopped, switched: true, migrated: true},
	}
	rollbackSteps = []killStep{
		{phase: service.PhasePending},
		{phase: service.PhaseSnapshot},
		{phase: service.PhaseGated},
		{phase: service.PhaseStarted},
		{phase: service.PhaseStopped},
		{phase: service.PhaseReversed, migrated: true},
		{phase: store.PhaseSwitching, migrated: true},
		{phase: store.PhaseSwitched, switched: true, migrated: true},
		{phase: service.PhaseCommitted, switched: true, migrated: true},
	}
)

// TestSwitchKilledBitpoll kills the real binary with SIGKILL at each
// phase of an upgrade of real Bitpoll (0.11.0 → master plus a migration
// whose field the new model reads, as in TestUpgradeBitpollUnderLoad) and
// of the rollback, in a booted trixie: 2 build phases, 9 of the upgrade
// and 9 of the rollback, each killed and run again. The new code fails on
// the old schema, which makes the poll page's answer a check that code
// and schema agree. See switchKilled for what each kill must leave.
func TestSwitchKilledBitpoll(t *testing.T) {
	rootfs := nspawn.Rootfs(t)
	switchKilled(t, rootfs, bitpollCase(t), killSteps{buildSteps, upgradeSteps, rollbackSteps})
}

// switchKilled runs, in one booted machine, c's old version as
// generation 1, then the same code under another config as generation
// 2, so that a rollback has somewhere further back to go. Then, for each
// phase, an upgrade to the new version (generation 3) killed there and
// run again, and a rollback killed there and run again.
//
// After each kill: the command died of SIGKILL at that phase; the switch
// is on record (/opt/bitpoll/switch-in-progress.json) for the rerun;
// current points at the old or the new generation, and the database holds
// wholly the old or wholly the new schema, each as far as the phase got;
// no generation that serves, or that a reboot would start, runs on a
// schema that lacks one of its own migrations; and the site answers.
//
// After each rerun: the new generation alone serves (for a rollback,
// generation 2, not further back), current points at it, the database
// holds its schema, its recorded migrations are the database's, no record
// is left, and the site answers with the poll made first.
func switchKilled(t *testing.T, rootfs string, c upgradeCase, steps killSteps) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	start := time.Now()
	vm := bootVersions(ctx, t, rootfs, testkit.BuildCLI(t, "crashhook"), c.lock, []appTree{{c.old, c.oldVer}, {c.new, c.newVer}}, "bitpoll-kill", "workers = 2\n")
	must := func(args ...string) []byte {
		t.Helper()
		out, err := vm.bpi(args...)
		if err != nil {
			t.Fatalf("%s: %v\n%s\nthe journal's last lines:\n%s", strings.Join(args, " "), err, out, vm.journal())
		}
		return out
	}
	must(append([]string{"install"}, vm.version(0)...)...)
	get200(t, vm.base)
	c.createPoll(t, vm.base, "before-the-kills")
	page := vm.base + c.pollPath("before-the-kills")
	oldSchema := dbMigrations(ctx, t, vm.m)
	if slices.Contains(oldSchema, c.migration) {
		t.Fatalf("the old version's database already has %s", c.migration)
	}
	newSchema := slices.Sorted(slices.Values(append(slices.Clone(oldSchema), c.migration)))

	config := vm.m.Upper("/etc/bitpoll/bitpoll.toml")
	data, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	writeConfig(t, vm.m, strings.Replace(string(data), "workers = 2\n", "workers = 3\n", 1))
	must(append([]string{"upgrade"}, vm.version(0)...)...)
	checkServing(ctx, t, vm.m, 2)
	t.Logf("generations 1 and 2 of %s in service: %v", c.oldVer, time.Since(start).Round(time.Second))

	// What each generation's code needs of the database.
	needs := map[int][]string{1: oldSchema, 2: oldSchema, 3: newSchema}
	for _, step := range steps.build {
		killedIn(ctx, t, vm, step.phase, append([]string{"upgrade"}, vm.version(1)...)...)
		checkKilled(ctx, t, vm, "upgrade", 2, 3, step, oldSchema, newSchema, needs, page)
	}
	for i := range max(len(steps.upgrade), len(steps.rollback)) {
		if i < len(steps.upgrade) {
			step := steps.upgrade[i]
			killedIn(ctx, t, vm, step.phase, append([]string{"upgrade"}, vm.version(1)...)...)
			checkKilled(ctx, t, vm, "upgrade", 2, 3, step, oldSchema, newSchema, needs, page)
			began := time.Now()
			must(append([]string{"upgrade"}, vm.version(1)...)...)
			t.Logf("upgrade run again after the kill at %s: %v", step.phase, time.Since(began).Round(time.Millisecond))
			checkFinished(ctx, t, vm, "upgrade killed at "+string(step.phase)+", then run again", 3, newSchema, page)
		}
		if i < len(steps.rollback) {
			step := steps.rollback[i]
			killedIn(ctx, t, vm, step.phase, "rollback")
			checkKilled(ctx, t, vm, "rollback", 3, 2, step, newSchema, oldSchema, needs, page)
			began := time.Now()
			out := must("rollback")
			t.Logf("rollback run again after the kill at %s: %v", step.phase, time.Since(began).Round(time.Millisecond))
			if !strings.Contains(string(out), "finishing the interrupted rollback from generation 3 to 2") {
				t.Errorf("the rollback run again after the kill at %s printed:\n%s\nwant it to say it finishes the interrupted one", step.phase, out)
			}
			checkFinished(ctx, t, vm, "rollback killed at "+string(step.phase)+", then run again", 2, oldSchema, page)
		}
		if t.Failed() {
			t.FailNow() // the next step starts from a state this one left wrong
		}
	}
	t.Logf("%d kills in %v all told", len(steps.build)+len(steps.upgrade)+len(steps.rollback), time.Since(start).Round(time.Second))
}

// killedIn runs the crashhook binary with args inside, to kill itself at
// phase, and fails unless it died of SIGKILL.
func killedIn(ctx context.Context, t *testing.T, vm *versionsMachine, phase store.Phase, args ...string) {
	t.Helper()
	began := time.Now()
	cmd := vm.m.Command(ctx, []string{"BITPOLL_CRASH_PHASE=" + string(phase)}, append([]string{"/srv/test/bitpoll-install"}, args...)...)
	out, err := cmd.CombinedOutput()
	if !killed(err) {
		t.Fatalf("%s, to be killed at %s, ended with %v; want death by SIGKILL (was the phase never reached?)\n%s\nthe journal's last lines:\n%s", args[0], phase, err, out, vm.journal())
	}
	t.Logf("%s killed at %s after %v", args[0], phase, time.Since(began).Round(time.Millisecond))
}

// journal is the machine's last journal lines, to say why a command
// failed.
func (v *versionsMachine) journal() string {
	out, _ := v.m.Exec(v.ctx, "journalctl", "--no-pager", "-n", "80")
	return string(out)
}

// killed says whether err is that of a process that died of SIGKILL:
// nsenter, which waits for the process it runs in the machine's PID
// namespace, dies of the same signal.
func killed(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// checkKilled checks what a switch of op from generation from to to,
// killed at step, left; fromSchema and toSchema are the database's
// migrations with each generation.
func checkKilled(ctx context.Context, t *testing.T, vm *versionsMachine, op string, from, to int, step killStep, fromSchema, toSchema []string, needs map[int][]string, page string) {
	t.Helper()
	when := fmt.Sprintf("after a kill of %s at %s", op, step.phase)
	var pend store.Pending
	if _, err := os.Lstat(vm.m.Upper("/opt/bitpoll/switch-in-progress.json")); step.unrecorded {
		if err == nil {
			t.Errorf("%s: a switch is on record, want none before the store path is in place and its generation added", when)
		}
	} else if data, err := os.ReadFile(vm.m.Upper("/opt/bitpoll/switch-in-progress.json")); err != nil || json.Unmarshal(data, &pend) != nil {
		t.Errorf("%s: the switch record: %v, want it kept for the rerun", when, err)
	} else if pend.Op != op || pend.From != from || pend.To != to {
		t.Errorf("%s: the switch record is %s from %d to %d, want %s from %d to %d", when, pend.Op, pend.From, pend.To, op, from, to)
	}
	wantCurrent := from
	if step.switched {
		wantCurrent = to
	}
	if cur := currentGeneration(t, vm.m); cur != wantCurrent {
		t.Errorf("%s: current is generation %d, want %d", when, cur, wantCurrent)
	}
	db := dbMigrations(ctx, t, vm.m)
	wantSchema, other := fromSchema, toSchema
	if step.migrated {
		wantSchema, other = toSchema, fromSchema
	}
	if !slices.Equal(db, wantSchema) {
		t.Errorf("%s: the database's migrations differ from generation %d's and %d's: %s",
			when, from, to, schemaDiff(db, wantSchema, other))
	}
	// Whatever serves now, or would after a reboot, runs on a schema with
	// all of its code's migrations (older code may meet one more: the
	// window every blue/green switch across a migration has).
	serving := servingGenerations(ctx, t, vm.m)
	if len(serving) == 0 {
		t.Errorf("%s: no generation is active", when)
	}
	enabled := enabledGenerations(ctx, t, vm.m, max(from, to))
	for _, n := range slices.Compact(slices.Sorted(slices.Values(append(serving, enabled...)))) {
		if n != from && n != to {
			t.Errorf("%s: generation %d is active or enabled, want only %d or %d", when, n, from, to)
		}
		if missing := subtract(needs[n], db); len(missing) > 0 {
			t.Errorf("%s: generation %d is active or enabled on a database without its migrations %q", when, n, missing)
		}
	}
	page200(t, page)
	t.Logf("%s: current %d, %d migrations, active %v, enabled %v", when, currentGeneration(t, vm.m), len(db), serving, enabled)
}

// checkFinished checks that generation n is in service alone with the
// schema its code has, with nothing left of the switch.
func checkFinished(ctx context.Context, t *testing.T, vm *versionsMachine, when string, n int, schema []string, page string) {
	t.Helper()
	checkServing(ctx, t, vm.m, n)
	if enabled := enabledGenerations(ctx, t, vm.m, 3); !slices.Equal(enabled, []int{n}) {
		t.Errorf("%s: the services of generations %v are enabled, want generation %d's alone", when, enabled, n)
	}
	if _, err := os.Lstat(vm.m.Upper("/opt/bitpoll/switch-in-progress.json")); err == nil {
		t.Errorf("%s: the switch record is left", when)
	}
	db := dbMigrations(ctx, t, vm.m)
	if !slices.Equal(db, schema) {
		t.Errorf("%s: the database's migrations are not generation %d's: %s", when, n, schemaDiff(db, schema, nil))
	}
	out, err := vm.bpi("--json", "generations")
	if err != nil {
		t.Fatalf("generations --json: %v\n%s", err, out)
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var m struct {
			Gen struct {
				N          int                 `json:"generation"`
				Current    bool                `json:"current"`
				Migrations map[string][]string `json:"migrations"`
			} `json:"generation"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("generations --json printed %q: %v", line, err)
		}
		if !m.Gen.Current {
			continue
		}
		found = true
		var recorded []string
		for _, app := range slices.Sorted(maps.Keys(m.Gen.Migrations)) {
			for _, name := range m.Gen.Migrations[app] {
				recorded = append(recorded, app+"."+name)
			}
		}
		slices.Sort(recorded)
		if m.Gen.N != n || !slices.Equal(recorded, db) {
			t.Errorf("%s: generations --json has generation %d current with migrations that differ from the database's: %s", when, m.Gen.N, schemaDiff(recorded, db, nil))
		}
	}
	if !found {
		t.Errorf("%s: generations --json shows no current generation:\n%s", when, out)
	}
	page200(t, page)
}

// dbMigrations is what Django's recorder holds in the service's SQLite
// database (app.name, sorted), read with Python's sqlite3 inside, read
// only: it is the schema whatever code serves, which `manage
// showmigrations` would not show for migrations its code lacks.
func dbMigrations(ctx context.Context, t *testing.T, m *nspawn.Machine) []string {
	t.Helper()
	const read = `import json, sqlite3
db = sqlite3.connect("file:/var/lib/private/bitpoll/db.sqlite3?mode=ro", uri=True)
print(json.dumps(sorted(a + "." + n for a, n in db.execute("select app, name from django_migrations"))))`
	out, err := m.Exec(ctx, "python3", "-c", read)
	if err != nil {
		t.Fatalf("read django_migrations: %v", err)
	}
	var names []string
	if err := json.Unmarshal(out, &names); err != nil || len(names) == 0 {
		t.Fatalf("django_migrations holds %q (%v), want the applied migrations", out, err)
	}
	return names
}

// schemaDiff describes how got differs from want (and from other, when
// given) in the migrations each lacks.
func schemaDiff(got, want, other []string) string {
	s := fmt.Sprintf("lacks %q and has %q more", subtract(want, got), subtract(got, want))
	if other != nil {
		s += fmt.Sprintf(" (than the one it should be; than the other, it lacks %q and has %q more)", subtract(other, got), subtract(got, other))
	}
	return s
}

// subtract is what of a is not in b.
func subtract(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func currentGeneration(t *testing.T, m *nspawn.Machine) int {
	t.Helper()
	link, err := os.Readlink(m.Upper("/opt/bitpoll/current"))
	var n int
	if err == nil {
		_, err = fmt.Sscanf(link, "generations/%d", &n)
	}
	if err != nil {
		t.Fatalf("current -> %q: %v", link, err)
	}
	return n
}

// servingGenerations are the generations whose service is active.
func servingGenerations(ctx context.Context, t *testing.T, m *nspawn.Machine) []int {
	t.Helper()
	out, _ := m.Exec(ctx, "systemctl", "list-units", "--plain", "--no-legend", "--state=active", "bitpoll@*.service")
	var ns []int
	for _, f := range strings.Fields(string(out)) {
		var n int
		if _, err := fmt.Sscanf(f, "bitpoll@%d.service", &n); err == nil {
			ns = append(ns, n)
		}
	}
	return ns
}

// enabledGenerations are those of generations 1 to last whose service
// is enabled: what a reboot starts.
func enabledGenerations(ctx context.Context, t *testing.T, m *nspawn.Machine, last int) []int {
	t.Helper()
	var ns []int
	for n := 1; n <= last; n++ {
		if systemctl(ctx, t, m, "is-enabled", fmt.Sprintf("bitpoll@%d.service", n)) == "enabled" {
			ns = append(ns, n)
		}
	}
	return ns
}
