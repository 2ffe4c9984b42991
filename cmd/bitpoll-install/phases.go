package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/progress"
	"github.com/bitpoll-install/bitpoll-install/service"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// A build announces each of its steps as it begins; the store and the
// switch report each of theirs once it is done. phaseClock turns both
// into a line per step, so that no step is silent, and times them for
// the summary at the end.

// buildSteps are the steps a build announces as they begin.
var buildSteps = map[store.Phase]string{
	install.PhaseFetchApp:   "fetching and verifying the app source",
	install.PhaseFetchFiles: "fetching the locked files",
	install.PhaseVenv:       "creating the venv",
	install.PhaseWheels:     "installing the wheels",
	install.PhaseCompile:    "compiling bytecode",
	install.PhasePrepareApp: "preparing the app: collectstatic and translations",
	install.PhaseManifest:   "writing the manifest",
}

// doneSteps are the steps reported once done that get a line of their
// own; the others (a rename, a symlink) take no time worth a line.
var doneSteps = map[store.Phase]string{
	store.PhaseSealed:      "the store path is sealed and on disk",
	service.PhasePending:   "the switch is recorded",
	service.PhaseRestored:  "the snapshot is restored",
	service.PhaseSnapshot:  "the database snapshot is taken",
	service.PhaseReversed:  "the newer migrations are reversed",
	service.PhaseMigrated:  "the migrations are applied",
	service.PhaseGated:     "the health gate passed",
	service.PhaseStarted:   "the new generation is started",
	service.PhaseCommitted: "current is switched",
	service.PhaseStopped:   "the old generation is stopped",

	service.PhaseBackupRestored: "the backup is in place, what it replaced kept beside it",
}

// phaseRecord is a step of a build or a switch: "started" as a build's
// step begins, "done" with its time as another step ends.
type phaseRecord struct {
	MessageType string   `json:"message_type"` // "phase"
	Phase       string   `json:"phase"`
	Status      string   `json:"status"` // "started" or "done"
	Description string   `json:"description"`
	Seconds     *float64 `json:"seconds"` // null for "started"
}

// timedPhase is one finished step.
type timedPhase struct {
	name string
	d    time.Duration
}

type phaseClock struct {
	mu    sync.Mutex
	start time.Time
	last  time.Time
	open  store.Phase // the build step under way, or ""
	steps []timedPhase
	// line prints a text line without disturbing a progress bar; with
	// json set, records go to w instead.
	line func(string)
	json bool
	w    io.Writer
}

func newPhaseClock(g *globalOptions) *phaseClock {
	now := time.Now()
	return &phaseClock{start: now, last: now, json: g.JSON, w: g.stdout, line: func(s string) { g.progress().Log(s) }}
}

// at records that phase p was reached.
func (c *phaseClock) at(p store.Phase) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	d := now.Sub(c.last)
	c.last = now
	if c.open != "" {
		c.steps = append(c.steps, timedPhase{string(c.open), d})
		c.open = ""
		d = 0 // this step was the build's, not p's
	}
	if desc, ok := buildSteps[p]; ok {
		c.open = p
		if c.json {
			writeJSONLine(c.w, phaseRecord{"phase", string(p), "started", desc, nil})
		} else {
			c.line(desc + "...")
		}
		return
	}
	c.steps = append(c.steps, timedPhase{string(p), d})
	desc, ok := doneSteps[p]
	if !ok {
		return
	}
	if c.json {
		s := d.Seconds()
		writeJSONLine(c.w, phaseRecord{"phase", string(p), "done", desc, &s})
	} else {
		c.line(fmt.Sprintf("%s (%s)", desc, seconds(d)))
	}
}

// buildPhases are the build's steps with their times, and the store's
// after them, as measured so far.
func (c *phaseClock) buildPhases() []timedPhase {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]timedPhase(nil), c.steps...)
}

func (c *phaseClock) elapsed() time.Duration { return time.Since(c.start) }

// summary is "done in 9.1 s: fetch-app 0.2 s, ..." over the build's
// steps and the switch's own (whose times the switch measured itself).
func summary(verb string, total time.Duration, build []timedPhase, sw []service.Phase) string {
	var parts []string
	seen := map[string]bool{}
	for _, p := range sw {
		seen[p.Name] = true
	}
	for _, p := range build {
		if named(p.name) && !seen[p.name] {
			parts = append(parts, p.name+" "+seconds(p.d))
		}
	}
	for _, p := range sw {
		parts = append(parts, p.Name+" "+seconds(p.Duration))
	}
	if len(parts) == 0 {
		return fmt.Sprintf("%s in %s", verb, seconds(total))
	}
	return fmt.Sprintf("%s in %s: %s", verb, seconds(total), strings.Join(parts, ", "))
}

// installedLine is uv's "installed 45 packages in 1.2 s" for a build
// that installed packages, with the install-wheels step's time; "" when
// nothing was installed (a rollback, or a store path already there).
func installedLine(res *install.Result, build []timedPhase) string {
	if res == nil || !res.Built || res.Packages == 0 {
		return ""
	}
	for _, p := range build {
		if p.name == string(install.PhaseWheels) {
			return fmt.Sprintf("installed %s in %s", plural(res.Packages, "package", "packages"), seconds(p.d))
		}
	}
	return ""
}

// phasesMS are the steps' times in milliseconds, by name.
func phasesMS(build []timedPhase, sw []service.Phase) map[string]int64 {
	m := map[string]int64{}
	for _, p := range build {
		if named(p.name) {
			m[p.name] = p.d.Milliseconds()
		}
	}
	for _, p := range sw {
		m[p.Name] = p.Duration.Milliseconds()
	}
	return m
}

// named reports whether a step is one the phase lines name; the others
// (a rename, a file's write) are too small for the summary.
func named(step string) bool {
	_, build := buildSteps[store.Phase(step)]
	_, done := doneSteps[store.Phase(step)]
	return build || done
}

func seconds(d time.Duration) string {
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// progress is the command's one progress reporter: a bar on a terminal,
// lines in a log, records with --json.
func (g *globalOptions) progress() progress.Reporter {
	g.progressOnce.Do(func() { g.progressRep = progress.New(g.messages(), g.JSON) })
	return g.progressRep
}
