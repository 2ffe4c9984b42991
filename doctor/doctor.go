// Package doctor checks an installation the way an admin would on a bad
// day: each check is small and named, looks at one thing, and ends ok
// or with a one-line fix. It reads and asks; it changes nothing. The
// store's own integrity is package store's (Check), the migration state
// Django's (through service.DatabaseState); this package decides what
// counts as healthy and what to do when it is not.
package doctor

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/bitpoll-install/bitpoll-install/config"
	"github.com/bitpoll-install/bitpoll-install/layout"
	"github.com/bitpoll-install/bitpoll-install/service"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// Status is how a check ended.
type Status string

const (
	OK     Status = "ok"
	Failed Status = "fail"
	// Skipped: the check does not apply (no systemd with --root, no TLS
	// proxy configured) or needs a check that failed.
	Skipped Status = "skip"
)

// Result is one check's outcome.
type Result struct {
	Check  string
	Status Status
	// Detail says what was found: what is fine, what is wrong, or why
	// the check was skipped.
	Detail string
	// Fix is one line that says what to do; empty unless Failed.
	Fix string
}

func (r Result) String() string {
	switch r.Status {
	case Failed:
		return fmt.Sprintf("FAIL  %s: %s; fix: %s", r.Check, r.Detail, r.Fix)
	case Skipped:
		return fmt.Sprintf("skip  %s: %s", r.Check, r.Detail)
	}
	return fmt.Sprintf("ok    %s: %s", r.Check, r.Detail)
}

// Options say what to check and how.
type Options struct {
	Layout layout.Layout
	// Systemd asks the running systemd about the units and runs the
	// database check in the service's sandbox; without it (--root) the
	// systemd checks are skipped and the code runs directly.
	Systemd bool
	// BuiltinTree is the git tree id of the app the binary's built-in
	// lock pins: a rebuild of that app needs no --lock.
	BuiltinTree string
	// MinFree is the free space every file system of the installation
	// keeps beyond what an upgrade needs; zero means DefaultMinFree.
	MinFree int64
	// Clock reports whether the kernel's clock is synchronized, and
	// Now is the time; nil means the real ones (tests replace them).
	Clock func() (bool, error)
	Now   func() time.Time
	// Statfs reports a file system's free bytes and an id that tells
	// file systems apart; nil means statfs(2).
	Statfs func(path string) (free uint64, id string, err error)
}

// DefaultMinFree is the free space a file system of the installation
// keeps beyond what an upgrade needs.
const DefaultMinFree = 256 << 20

// QuickSample is the share of the store's files, in percent, whose
// content the store check rehashes; their structure (types, modes,
// sizes, symlinks, added or missing files) is checked in full.
const QuickSample = 1

// check is one named check: needs are the checks that must pass first.
type check struct {
	name  string
	needs []string
	run   func(ctx context.Context, e *env) Result
}

// The checks, in the order they run and print.
var checks = []check{
	{"config", nil, checkConfig},
	{"secrets", nil, checkSecrets},
	{"interpreter", nil, checkInterpreter},
	{"store", nil, checkStore},
	{"units", nil, checkUnits},
	{"socket", nil, checkSocket},
	{"database", []string{"interpreter"}, checkDatabase},
	{"disk", nil, checkDisk},
	{"allowed-hosts", nil, checkAllowedHosts},
	{"clock", nil, checkClock},
	{"proxy", nil, checkProxy},
}

// Names are the checks' names, in order.
func Names() []string {
	var out []string
	for _, c := range checks {
		out = append(out, c.name)
	}
	return out
}

// Run runs every check in order, calls report with each result as it
// ends, and returns them all.
func Run(ctx context.Context, o Options, report func(Result)) []Result {
	if o.MinFree == 0 {
		o.MinFree = DefaultMinFree
	}
	if o.Clock == nil {
		o.Clock = clockSynced
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Statfs == nil {
		o.Statfs = statfs
	}
	e := &env{o: o, status: map[string]Status{}}
	var out []Result
	for _, c := range checks {
		var r Result
		if failed := e.failedNeed(c.needs); failed != "" {
			r = Result{Status: Skipped, Detail: "needs the " + failed + " check to pass first"}
		} else if err := ctx.Err(); err != nil {
			r = Result{Status: Skipped, Detail: err.Error()}
		} else {
			r = c.run(ctx, e)
		}
		r.Check = c.name
		if r.Status == Failed && r.Fix == "" {
			r.Fix = "see above" // never: each check names its fix
		}
		e.status[c.name] = r.Status
		out = append(out, r)
		if report != nil {
			report(r)
		}
	}
	return out
}

// env is what the checks share: the options and what one check read
// that another needs, read once.
type env struct {
	o      Options
	status map[string]Status

	cfgRead bool
	cfg     *config.Config
	cfgErr  error

	rawRead bool
	raw     *rawConfig
	rawErr  error

	genRead bool
	st      *store.Store
	cur     store.Generation
	hasCur  bool
	genErr  error
}

func (e *env) failedNeed(needs []string) string {
	for _, n := range needs {
		if e.status[n] != OK {
			return n
		}
	}
	return ""
}

// config is the admin's config, validated.
func (e *env) config() (*config.Config, error) {
	if !e.cfgRead {
		e.cfgRead = true
		e.cfg, e.cfgErr = config.Load(e.o.Layout.ConfigFile())
	}
	return e.cfg, e.cfgErr
}

// generation is the current generation, if any.
func (e *env) generation() (*store.Store, store.Generation, bool, error) {
	if !e.genRead {
		e.genRead = true
		if _, err := os.Stat(e.o.Layout.StoreDir()); err != nil {
			e.genErr = fmt.Errorf("no store at %s", e.o.Layout.StoreDir())
		} else if e.st, e.genErr = store.Open(e.o.Layout); e.genErr == nil {
			e.cur, e.hasCur, e.genErr = e.st.CurrentGeneration()
		}
	}
	return e.st, e.cur, e.hasCur, e.genErr
}

// needGeneration is the current generation, or the failed Result that
// says there is none.
func (e *env) needGeneration() (store.Generation, *Result) {
	_, cur, ok, err := e.generation()
	if err != nil {
		return cur, &Result{Status: Failed, Detail: err.Error(), Fix: e.cmd("install") + " (nothing is installed here yet, or give --root DIR of the installation)"}
	}
	if !ok {
		return cur, &Result{Status: Failed, Detail: "no generation is current in " + e.o.Layout.Current(), Fix: e.cmd("install")}
	}
	return cur, nil
}

// cmd is a bitpoll-install command line for this installation.
func (e *env) cmd(args string) string {
	if e.o.Layout.Root != "" {
		return "bitpoll-install --root " + e.o.Layout.Root + " " + args
	}
	return "sudo bitpoll-install " + args
}

// rebuild is the command that builds the current generation's app anew
// and switches to it: install with the lock it came from.
func (e *env) rebuild(m service.Manifest, tree string) string {
	c := e.cmd("install")
	if tree == "" || tree != e.o.BuiltinTree {
		c += fmt.Sprintf(" --lock FILE (the lock of %s %s you installed)", orUnknown(m.App.Name), orUnknown(m.App.Version))
	}
	return c
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

func ok(format string, args ...any) Result {
	return Result{Status: OK, Detail: fmt.Sprintf(format, args...)}
}

func skip(format string, args ...any) Result {
	return Result{Status: Skipped, Detail: fmt.Sprintf(format, args...)}
}

func fail(fix, format string, args ...any) Result {
	return Result{Status: Failed, Detail: fmt.Sprintf(format, args...), Fix: fix}
}

// firstLine is the first line of s, for a detail that must stay on one.
func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// Failures counts the failed results.
func Failures(rs []Result) int {
	return len(slices.DeleteFunc(slices.Clone(rs), func(r Result) bool { return r.Status != Failed }))
}
