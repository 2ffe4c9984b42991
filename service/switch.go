package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/bitpoll-install/bitpoll-install/migration"
	"github.com/bitpoll-install/bitpoll-install/store"
	"github.com/bitpoll-install/bitpoll-install/unitgen"
)

// The phases of a switch, in order, for Options.Hooks: tests kill the
// process at each to prove that a rerun finishes the switch.
const (
	PhasePending   store.Phase = "switch-pending" // the switch is recorded, nothing changed yet
	PhaseRestored  store.Phase = "snapshot-restored"
	PhaseSnapshot  store.Phase = "snapshot-taken"
	PhaseReversed  store.Phase = "migrations-reversed"
	PhaseMigrated  store.Phase = "migrated"
	PhaseGated     store.Phase = "gate-passed"
	PhaseStarted   store.Phase = "new-started"
	PhaseCommitted store.Phase = "current-switched"
	PhaseStopped   store.Phase = "old-stopped"
)

// Deploy puts storePath into service as a new generation (or the newest
// one that already points at it, when nothing else changed) and switches
// to it. The caller holds st's lock.
func (p *Plan) Deploy(ctx context.Context, st *store.Store, storePath string) (*Result, error) {
	if pend, ok, err := st.ReadPending(); err != nil {
		return nil, err
	} else if ok {
		p.o.Log(fmt.Sprintf("finishing the interrupted %s from generation %d to %d first", pend.Op, pend.From, pend.To))
		if _, err := p.resume(ctx, st, pend); err != nil {
			return nil, err
		}
	}
	cur, hasCur, err := st.CurrentGeneration()
	if err != nil {
		return nil, err
	}
	r := &Result{}
	// The files first: a changed config is a change to roll out like a
	// new store path.
	n := cur.N
	if !hasCur {
		n = 1
	}
	if err := p.writeFiles(n, r); err != nil {
		return nil, err
	}
	same := hasCur && filepath.Base(cur.Target) == filepath.Base(storePath)
	if same && len(r.Units) == 0 && !r.Settings && !r.GunicornConf {
		r.Generation = cur
		if p.o.Systemd {
			return r, p.ensureRunning(ctx, cur.N, r)
		}
		return r, nil
	}
	before, err := st.Generations()
	if err != nil {
		return nil, err
	}
	var to store.Generation
	if same {
		// The same code with another config: a generation of its own, so
		// that the new one starts beside the old.
		to, err = st.AddGenerationAlways(storePath)
	} else {
		to, err = st.AddGeneration(storePath)
	}
	if err != nil {
		return nil, err
	}
	if to.N != n {
		// The socket starts the generation that will serve.
		if err := p.writeFiles(to.N, r); err != nil {
			return nil, err
		}
	}
	pend := store.Pending{Op: "upgrade", To: to.N, Started: time.Now().UTC(),
		Added: !slices.ContainsFunc(before, func(g store.Generation) bool { return g.N == to.N })}
	if hasCur {
		pend.From = cur.N
	}
	return p.run(ctx, st, pend, r)
}

// Rollback switches to generation to (the one before current when 0).
// The caller holds st's lock.
func (p *Plan) Rollback(ctx context.Context, st *store.Store, to int, restoreSnapshot bool) (*Result, error) {
	if pend, ok, err := st.ReadPending(); err != nil {
		return nil, err
	} else if ok {
		p.o.Log(fmt.Sprintf("finishing the interrupted %s from generation %d to %d instead; run rollback again afterwards to go further", pend.Op, pend.From, pend.To))
		return p.resume(ctx, st, pend)
	}
	cur, ok, err := st.CurrentGeneration()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("nothing to roll back: there is no current generation (run bitpoll-install install)")
	}
	if to == 0 {
		gens, err := st.Generations()
		if err != nil {
			return nil, err
		}
		for _, g := range gens {
			if g.N < cur.N {
				to = g.N
			}
		}
		if to == 0 {
			return nil, fmt.Errorf("generation %d is the oldest there is; nothing to roll back to", cur.N)
		}
	}
	if to == cur.N {
		return nil, fmt.Errorf("generation %d is already current", to)
	}
	if _, err := st.ReadMeta(to); err != nil {
		return nil, fmt.Errorf("roll back to generation %d: %w (bitpoll-install generations lists them)", to, err)
	}
	r := &Result{}
	if err := p.writeFiles(to, r); err != nil {
		return nil, err
	}
	return p.run(ctx, st, store.Pending{Op: "rollback", From: cur.N, To: to, RestoreSnapshot: restoreSnapshot, Started: time.Now().UTC()}, r)
}

// resume finishes a switch a killed process left: every step looks at
// the real state (the database's migrations, current, the units), so
// running the switch again from the start finishes it.
func (p *Plan) resume(ctx context.Context, st *store.Store, pend store.Pending) (*Result, error) {
	r := &Result{}
	if err := p.writeFiles(pend.To, r); err != nil {
		return nil, err
	}
	return p.run(ctx, st, pend, r)
}

// switcher is one switch in progress.
type switcher struct {
	p     *Plan
	st    *store.Store
	run   runner
	r     *Result
	start time.Time
	last  time.Time
}

func (s *switcher) phase(name store.Phase, path string) {
	now := time.Now()
	s.r.Phases = append(s.r.Phases, Phase{string(name), now.Sub(s.last)})
	s.last = now
	s.p.o.Hooks.Call(name, path)
}

func (p *Plan) runner() runner {
	if p.o.Systemd {
		return &systemdRunner{l: p.o.Layout}
	}
	return &directRunner{l: p.o.Layout, settings: rootedSettings(p.settings, p.o.Layout.Root), stamp: p.spec.DatabaseStamp}
}

// run switches from pend.From (0: none) to pend.To:
//
//  1. record the switch, so that a rerun after a crash finishes it;
//  2. with RestoreSnapshot, stop the old generation and put the snapshot
//     back, keeping the replaced database beside it;
//  3. ask the new code for the database's state (its system checks run
//     first: code that fails at import stops here, with nothing changed);
//  4. reverse, with the old (newer) code, the migrations the new code
//     does not know, after a snapshot; migrations that drop data are
//     refused by name;
//  5. apply the new code's migrations, after a snapshot;
//  6. the health gate: the new code's gunicorn on a private socket
//     answers 200 to a Host the site allows, no migration is left
//     unapplied, and SQLite's integrity check passes; if not, the
//     migrations of step 5 are reversed and nothing else changed;
//  7. under systemd, start the new generation on the shared listening
//     socket beside the old one and wait for its workers;
//  8. switch current, and record the generation's migrations;
//  9. stop the old generation (it finishes its requests), and forget the
//     switch.
func (p *Plan) run(ctx context.Context, st *store.Store, pend store.Pending, r *Result) (*Result, error) {
	s := &switcher{p: p, st: st, run: p.runner(), r: r, start: time.Now(), last: time.Now()}
	if p.o.Systemd {
		props, err := sandboxProperties(p.o.Layout)
		if err != nil {
			return nil, err
		}
		s.run.(*systemdRunner).props = props
	}
	r.Previous = pend.From
	if err := st.WritePending(pend); err != nil {
		return nil, err
	}
	if err := p.clearUnswitched(); err != nil {
		return nil, err
	}
	s.phase(PhasePending, "")
	toMeta, err := st.ReadMeta(pend.To)
	if err != nil {
		return nil, err
	}
	toMan, err := ReadManifest(toMeta.StorePath)
	if err != nil {
		return nil, err
	}
	// Verified once, before anything changes: the switch is then a rename.
	if err := st.Verify(toMeta.StorePath); err != nil {
		return nil, s.fail(pend, err)
	}
	if pend.RestoreSnapshot {
		if err := s.restoreSnapshot(ctx, &pend); err != nil {
			return nil, err
		}
		s.phase(PhaseRestored, r.Restored)
	}
	if pend.Restore != "" {
		if err := s.restoreBackup(ctx, &pend); err != nil {
			return nil, err
		}
		s.phase(PhaseBackupRestored, r.Restored)
	}

	state, err := s.state(ctx, pend.To)
	if err != nil {
		return nil, s.fail(pend, fmt.Errorf("%w\ngeneration %d was not switched to, and the database was not touched", err, pend.To))
	}
	if len(state.Errors) > 0 {
		return nil, s.fail(pend, fmt.Errorf("generation %d (%s %s) fails Django's system checks, so it was not switched to and the database was not touched:\n%s",
			pend.To, toMan.App.Name, toMan.App.Version, strings.Join(state.Errors, "\n")))
	}
	// Going back: the older code starts on the newer schema (the same
	// window an upgrade has, in which the older code meets the newer
	// schema), the newer generation stops, and only then does the newer
	// code reverse its migrations. Reversing first would leave the newer
	// code serving a schema it does not know.
	var reversal map[string]string
	if len(state.Unknown) > 0 {
		if reversal, err = s.planReverse(ctx, pend, state); err != nil {
			return nil, s.fail(pend, err)
		}
	}
	before := state
	if reversal == nil && len(state.Unapplied) > 0 {
		if err := s.snapshot(ctx, pend, &toMeta); err != nil {
			return nil, err
		}
		// The stamp of an earlier time on this store path would skip them.
		if err := s.clearStamps(""); err != nil {
			return nil, err
		}
		if err := s.run.migrate(ctx, pend.To); err != nil {
			return nil, s.fail(pend, fmt.Errorf("the migrations of generation %d failed; generation %d still serves:\n%w", pend.To, pend.From, err))
		}
		for _, n := range state.Unapplied {
			r.Applied = append(r.Applied, n.String())
		}
		s.phase(PhaseMigrated, "")
	} else if err := s.stamp(toMeta.StorePath); err != nil {
		// Nothing to migrate (or only to reverse): the unit need not run
		// Django to find that out.
		return nil, err
	}
	after, gateErr := s.gate(ctx, pend.To, toMan.Project, reversal == nil)
	if gateErr != nil {
		undo := s.undoMigrations(ctx, pend, before)
		return nil, s.fail(pend, errors.Join(gateErr, undo))
	}
	s.phase(PhaseGated, "")

	if p.o.Systemd {
		ready := time.Now()
		if err := withSystemd(ctx, func(sd *systemd) error { return s.startNew(sd, pend) }); err != nil {
			undo := s.undoMigrations(ctx, pend, before)
			return nil, s.fail(pend, errors.Join(err, undo))
		}
		r.Started, r.Ready = true, time.Since(ready)
		s.phase(PhaseStarted, "")
	}
	if reversal != nil {
		if p.o.Systemd {
			if err := withSystemd(ctx, func(sd *systemd) error { return s.stopOthers(sd, pend.To) }); err != nil {
				return nil, err
			}
			s.phase(PhaseStopped, "")
		}
		if err := s.reverse(ctx, pend, reversal); err != nil {
			return nil, fmt.Errorf("%w\ngeneration %d serves on the newer schema meanwhile; run the same command again to finish", err, pend.To)
		}
		s.phase(PhaseReversed, "")
		if after, err = s.state(ctx, pend.To); err != nil {
			return nil, err
		}
		if problems := schemaProblems(after, true); len(problems) > 0 {
			return nil, fmt.Errorf("after reversing, generation %d finds: %s; run the same command again to finish", pend.To, strings.Join(problems, "; "))
		}
	}
	if err := st.SwitchVerified(pend.To); err != nil {
		return nil, err
	}
	r.Switched = true
	now := time.Now().UTC()
	toMeta.Migrations = after.AppliedByApp()
	toMeta.MigratedAt = &now
	toMeta.Database = p.spec.DatabaseStamp
	toMeta.AppVersion, toMeta.Python = toMan.App.Version, toMan.Python
	if pend.From != pend.To {
		toMeta.Previous = pend.From
	}
	if toMeta.Created.IsZero() {
		toMeta.Created = now
	}
	if err := st.WriteMeta(toMeta); err != nil {
		return nil, err
	}
	s.phase(PhaseCommitted, "")
	if p.o.Systemd && reversal == nil {
		if err := withSystemd(ctx, func(sd *systemd) error { return s.stopOthers(sd, pend.To) }); err != nil {
			return nil, err
		}
		s.phase(PhaseStopped, "")
	}
	if err := s.clearStamps(filepath.Base(toMeta.StorePath)); err != nil {
		return nil, err
	}
	if err := st.ClearPending(); err != nil {
		return nil, err
	}
	if pend.Restore != "" {
		_ = os.RemoveAll(pend.Restore) // in place now; what it replaced is kept
	}
	if r.Generation, err = currentGen(st); err != nil {
		return nil, err
	}
	return r, nil
}

func currentGen(st *store.Store) (store.Generation, error) {
	g, _, err := st.CurrentGeneration()
	return g, err
}

// fail ends a switch that changed nothing the user sees: a generation it
// made goes again (gc frees its store path), and so does the record, so
// the next command starts afresh.
func (s *switcher) fail(pend store.Pending, err error) error {
	if pend.Added {
		if rerr := s.st.RemoveGeneration(pend.To); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
	if cerr := s.st.ClearPending(); cerr != nil {
		return errors.Join(err, cerr)
	}
	return err
}

// state asks generation n's code about the database.
func (s *switcher) state(ctx context.Context, n int) (*migration.State, error) {
	return readState(ctx, s.run, n)
}

// readState asks generation n's code, through run, about the database.
func readState(ctx context.Context, run runner, n int) (*migration.State, error) {
	out, err := run.python(ctx, n, migration.StateArgs()...)
	st, perr := migration.ParseState(out)
	if perr != nil {
		if err != nil {
			return nil, fmt.Errorf("generation %d could not read the database's migration state (%v); it says:\n%s", n, err, lastLines(out, 25))
		}
		return nil, fmt.Errorf("generation %d: %w", n, perr)
	}
	return st, nil
}

// planReverse asks the current (newer) code for the plan that undoes
// the applied migrations that generation pend.To does not know, and
// refuses by name the ones that cannot give their data back. It returns
// the `migrate APP TARGET` targets, after a snapshot.
func (s *switcher) planReverse(ctx context.Context, pend store.Pending, to *migration.State) (map[string]string, error) {
	var unknown []string
	for _, n := range to.Unknown {
		unknown = append(unknown, n.String())
	}
	if pend.From == 0 || pend.From == pend.To {
		return nil, fmt.Errorf("the database has migrations that generation %d does not know (%s) and no newer generation is current to reverse them; restore a backup", pend.To, strings.Join(unknown, ", "))
	}
	targets, err := migration.ReverseTargets(to)
	if err != nil {
		return nil, err
	}
	out, err := s.run.python(ctx, pend.From, migration.PlanArgs(targets)...)
	plan, perr := migration.ParsePlan(out)
	if perr != nil {
		return nil, fmt.Errorf("generation %d could not plan the reversal of %s (%v):\n%s", pend.From, strings.Join(unknown, ", "), err, lastLines(out, 25))
	}
	if refusals := migration.Refusals(plan); len(refusals) > 0 {
		return nil, fmt.Errorf("rolling back to generation %d means reversing migrations that cannot give the data back:\n  %s\nnothing was changed. %s",
			pend.To, strings.Join(refusals, "\n  "), s.restoreAdvice(pend))
	}
	meta, err := s.st.ReadMeta(pend.To)
	if err != nil {
		return nil, err
	}
	if err := s.snapshot(ctx, pend, &meta); err != nil {
		return nil, err
	}
	for _, st := range plan {
		if st.Backwards {
			s.r.Reversed = append(s.r.Reversed, st.String())
		}
	}
	return targets, nil
}

// reverse runs `migrate APP TARGET` with generation pend.From's code,
// which alone has the reverse operations.
func (s *switcher) reverse(ctx context.Context, pend store.Pending, targets map[string]string) error {
	apps := make([]string, 0, len(targets))
	for app := range targets {
		apps = append(apps, app)
	}
	slices.Sort(apps)
	for _, app := range apps {
		target := targets[app]
		if target == "" {
			target = "zero"
		}
		if out, err := s.run.python(ctx, pend.From, "manage.py", "migrate", app, target, "--noinput"); err != nil {
			return fmt.Errorf("reverse the migrations of %s to %s with generation %d: %w\n%s", app, target, pend.From, err, lastLines(out, 25))
		}
	}
	return nil
}

// restoreAdvice says which --restore-snapshot can go back from pend.From.
func (s *switcher) restoreAdvice(pend store.Pending) string {
	from, err := s.st.ReadMeta(pend.From)
	switch {
	case err != nil || from.Snapshot == "":
		return fmt.Sprintf("Generation %d has no snapshot to restore; restore a backup to go further back.", pend.From)
	case from.SnapshotOf == 0:
		return fmt.Sprintf("Generation %d's snapshot was taken before any generation ran; restore a backup to go further back.", pend.From)
	}
	return fmt.Sprintf("To go back anyway, run: bitpoll-install rollback --to %d --restore-snapshot\n"+
		"(it restores the database as it was before generation %d's migrations, with generation %d's schema, and keeps the current one beside it)",
		from.SnapshotOf, pend.From, from.SnapshotOf)
}

// gate checks generation n before it takes traffic: its code answers
// 200, and, with schema, the database holds exactly its migrations and
// passes SQLite's integrity check. Before a reversal the database is
// still ahead of n, so only the answer and the integrity count.
func (s *switcher) gate(ctx context.Context, n int, project string, schema bool) (*migration.State, error) {
	host := gateHost(s.p.settings.AllowedHosts, s.p.settings.BaseURL)
	sock, stop, err := s.run.startGate(ctx, n, project)
	if err != nil {
		return nil, err
	}
	perr := probe(ctx, sock, host, s.p.settings.SecureProxySSLHeader && strings.HasPrefix(s.p.settings.BaseURL, "https:"), s.p.o.GateTimeout)
	logs := stop()
	if perr != nil {
		return nil, fmt.Errorf("the health gate refused generation %d: %w; it was not switched to, and the old generation still serves. Its log:\n%s", n, perr, logs)
	}
	st, err := s.state(ctx, n)
	if err != nil {
		return nil, fmt.Errorf("the health gate refused generation %d: %w", n, err)
	}
	if problems := schemaProblems(st, schema); len(problems) > 0 {
		return nil, fmt.Errorf("the health gate refused generation %d: %s", n, strings.Join(problems, "; "))
	}
	return st, nil
}

// schemaProblems are what `migrate --check` and SQLite's integrity check
// find; without schema only the integrity check counts.
func schemaProblems(st *migration.State, schema bool) []string {
	var problems []string
	if schema && len(st.Unapplied) > 0 {
		problems = append(problems, fmt.Sprintf("migrate --check: %d migrations unapplied (%v)", len(st.Unapplied), st.Unapplied))
	}
	if schema && len(st.Unknown) > 0 {
		problems = append(problems, fmt.Sprintf("the database has migrations this code does not know (%v)", st.Unknown))
	}
	if st.Integrity != "" && st.Integrity != "ok" {
		problems = append(problems, "SQLite integrity_check: "+st.Integrity)
	}
	return problems
}

// gateHost is a Host header the site accepts: the first allowed host that
// is a plain name, else base_url's.
func gateHost(allowed []string, baseURL string) string {
	for _, h := range allowed {
		if h != "" && h != "*" && !strings.HasPrefix(h, ".") {
			return h
		}
	}
	h := strings.TrimPrefix(strings.TrimPrefix(baseURL, "https://"), "http://")
	h, _, _ = strings.Cut(h, "/")
	return h
}

// undoMigrations puts the database back to before: the migrations the
// new code applied are reversed with that code, which has the reverse
// operations.
func (s *switcher) undoMigrations(ctx context.Context, pend store.Pending, before *migration.State) error {
	if len(s.r.Applied) == 0 {
		return nil
	}
	prior := before.AppliedByApp()
	targets := map[string]string{}
	for _, n := range before.Unapplied {
		if names := prior[n.App]; len(names) > 0 {
			targets[n.App] = names[len(names)-1]
		} else {
			targets[n.App] = "zero"
		}
	}
	var errs []error
	for app, target := range targets {
		if out, err := s.run.python(ctx, pend.To, "manage.py", "migrate", app, target, "--noinput"); err != nil {
			errs = append(errs, fmt.Errorf("reverse %s to %s: %w\n%s", app, target, err, lastLines(out, 15)))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("the new migrations could not all be reversed; the snapshot %s holds the database from before: %w", s.r.Snapshot, errors.Join(errs...))
	}
	s.r.Applied = nil
	return nil
}

// startNew starts generation pend.To beside the one serving, on the same
// listening socket, and waits until its workers run.
func (s *switcher) startNew(sd *systemd, pend store.Pending) error {
	if err := sd.reload(); err != nil {
		return err
	}
	if err := sd.start(unitgen.SocketUnit); err != nil {
		return err
	}
	unit := unitgen.ServiceUnit(pend.To)
	if err := sd.start(unit); err != nil {
		return fmt.Errorf("generation %d passed the gate but failed to start; generation %d still serves: %w", pend.To, pend.From, err)
	}
	if err := sd.waitWorkers(unit, s.p.spec.Workers, s.p.o.GateTimeout); err != nil {
		return err
	}
	return sd.enable(unitgen.SocketUnit, unit)
}

// legacyUnits are the units of installs before generations had units of
// their own: one bitpoll.service that followed current.
var legacyUnits = []string{"bitpoll.service", "bitpoll-migrate.service"}

// stopOthers stops and disables every generation's service but keep's:
// the one before, any a killed run left, and the single service of an
// install from before generations had their own units (whose files go).
func (s *switcher) stopOthers(sd *systemd, keep int) error {
	units, err := sd.conn.ListUnitsByPatternsContext(sd.ctx, nil, append([]string{"bitpoll@*.service"}, legacyUnits...))
	if err != nil {
		return fmt.Errorf("list bitpoll@*.service: %w", err)
	}
	var errs []error
	for _, u := range units {
		if u.Name == unitgen.ServiceUnit(keep) {
			continue
		}
		if u.ActiveState != "inactive" {
			if err := sd.stop(u.Name); err != nil {
				errs = append(errs, err)
			}
		}
		if err := sd.disable(u.Name); err != nil {
			errs = append(errs, err)
		}
	}
	removed := false
	for _, name := range legacyUnits {
		path := filepath.Join(s.p.o.Layout.Root, UnitDir, name)
		if err := os.Remove(path); err == nil {
			removed = true
		} else if !os.IsNotExist(err) {
			errs = append(errs, fmt.Errorf("remove the old unit %s: %w", path, err))
		}
	}
	if removed {
		errs = append(errs, sd.reload())
	}
	return errors.Join(errs...)
}

// ensureRunning starts what should run when nothing changed: after a
// reboot with the socket disabled by hand, say.
func (p *Plan) ensureRunning(ctx context.Context, n int, r *Result) error {
	return withSystemd(ctx, func(sd *systemd) error {
		if err := sd.reload(); err != nil {
			return err
		}
		if err := sd.enable(unitgen.SocketUnit, unitgen.ServiceUnit(n)); err != nil {
			return err
		}
		if err := sd.start(unitgen.SocketUnit); err != nil {
			return err
		}
		if err := sd.start(unitgen.ServiceUnit(n)); err != nil {
			return err
		}
		r.Started = true
		return nil
	})
}

// stamp marks storePath's migrations as applied to this database, so
// that its unit skips them. The folder and the stamp get the owner of the
// state directory: the migration unit, as the service's dynamic user,
// writes the next stamp there, and systemd fixes the owner of the state
// directory's contents only when the directory itself has another.
func (s *switcher) stamp(storePath string) error {
	state := statePath(s.p.o.Layout)
	dir := filepath.Join(state, "migrated")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("stamp the migrations: %w", err)
	}
	path := filepath.Join(dir, filepath.Base(storePath)+"-"+s.p.spec.DatabaseStamp)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("stamp the migrations: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("stamp the migrations: %w", err)
	}
	fi, err := os.Stat(state)
	if err != nil {
		return fmt.Errorf("stamp the migrations: %w", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		for _, p := range []string{dir, path} {
			if err := os.Lchown(p, int(st.Uid), int(st.Gid)); err != nil {
				return fmt.Errorf("stamp the migrations: %w", err)
			}
		}
	}
	return nil
}

// clearStamps removes the migration stamps but keep's (every one when
// keep is empty): a stamp says the database holds that store path's
// schema, which stops being true when another generation migrates.
func (s *switcher) clearStamps(keepStorePath string) error {
	dir := filepath.Join(statePath(s.p.o.Layout), "migrated")
	entries, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return fmt.Errorf("read the migration stamps: %w", err)
	}
	keep := ""
	if keepStorePath != "" {
		keep = keepStorePath + "-" + s.p.spec.DatabaseStamp
	}
	for _, e := range entries {
		if e.Name() == keep {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("remove the stale migration stamp: %w", err)
		}
	}
	return nil
}
