package resolve

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/pyspec/pep508"
	"github.com/bitpoll-install/bitpoll-install/pyspec/wheeltag"
)

// DefaultExtra are added to the app's pins: the WSGI server, static file
// serving without a web server, and a PostgreSQL driver that ships wheels.
// They are exact pins so that the same inputs always give the same lock.
var DefaultExtra = []string{"gunicorn==27.0.1", "whitenoise==6.12.0", "psycopg[binary]==3.3.9"}

// DefaultTargets are the environments a lock covers unless told otherwise.
var DefaultTargets = []string{"cp312-x86_64", "cp313-x86_64", "cp314-x86_64", "cp312-aarch64", "cp313-aarch64", "cp314-aarch64"}

// DefaultGlibc is the oldest glibc a lock supports by default: that of
// RHEL 8 and Debian 10, the oldest distributions still in wide use.
const DefaultGlibc = "2.28"

// LockOptions are the inputs of a lock.
type LockOptions struct {
	App          AppSource
	Extra        []string // PEP 508 requirements added to the app's pins
	Targets      []string // "cp313-x86_64"
	Glibc        string
	ExcludeNewer time.Time
	CreatedBy    string
	// WorkDir holds the fetched source while locking; a temporary
	// directory when empty.
	WorkDir string
}

// Lock pins the app source and resolves its requirements for every target.
func Lock(ctx context.Context, idx Index, o LockOptions, rep Reporter) (*lockfile.Lock, error) {
	if rep == nil {
		rep = nopReporter{}
	}
	glibc, err := wheeltag.ParseGlibc(o.Glibc)
	if err != nil {
		return nil, fmt.Errorf("--glibc: %w", err)
	}
	targets, names, err := parseTargets(o.Targets, glibc)
	if err != nil {
		return nil, err
	}
	extra, err := parseExtra(o.Extra)
	if err != nil {
		return nil, err
	}
	work := o.WorkDir
	if work == "" {
		if work, err = os.MkdirTemp("", "bitpoll-lock-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(work)
	}
	pinned, err := PinApp(ctx, o.App, filepath.Join(work, "app"))
	if err != nil {
		return nil, err
	}
	if len(pinned.Missing) > 0 {
		rep.Notef("%d files are missing from %s (first: %s): the tree id comes from git's objects and nar-hash is left out", len(pinned.Missing), o.App.Src, pinned.Missing[0])
	}
	rep.Notef("pinned %s %s: commit %s, tree %s", pinned.App.Name, pinned.App.Version, orNone(pinned.App.Commit), pinned.App.Tree)
	reqs, err := ReadRequirements(pinned.Dir, pinned.App.Requirements)
	if err != nil {
		return nil, err
	}
	pkgs, err := Resolve(ctx, idx, Input{Requirements: reqs, Extra: extra, Targets: targets, ExcludeNewer: o.ExcludeNewer}, rep)
	if err != nil {
		return nil, err
	}
	l := &lockfile.Lock{
		LockVersion:       lockfile.Version,
		CreatedBy:         o.CreatedBy,
		RequiresPython:    requiresPython(targets),
		Glibc:             o.Glibc,
		Targets:           names,
		ExtraRequirements: o.Extra,
		App:               pinned.App,
		Packages:          pkgs,
	}
	if !o.ExcludeNewer.IsZero() {
		l.ExcludeNewer = o.ExcludeNewer.UTC().Format(time.RFC3339)
	}
	if err := l.Check(); err != nil {
		return nil, fmt.Errorf("internal error: the resolved lock does not validate: %w", err)
	}
	return l, nil
}

// ResolvePins re-resolves a lock's own pins: every runtime package at its
// locked version, plus its extra requirements. The lock's packages must come
// back identical; that proves a lock reproducible without its app source.
func ResolvePins(ctx context.Context, idx Index, l *lockfile.Lock, rep Reporter) ([]lockfile.Package, error) {
	glibc, err := wheeltag.ParseGlibc(l.Glibc)
	if err != nil {
		return nil, err
	}
	targets, _, err := parseTargets(l.Targets, glibc)
	if err != nil {
		return nil, err
	}
	extra, err := parseExtra(l.ExtraRequirements)
	if err != nil {
		return nil, err
	}
	var pins []Requirement
	for _, p := range l.Packages {
		if p.BuildOnly {
			continue
		}
		s := p.Name + "==" + p.Version
		if p.Marker != "" {
			s += "; " + p.Marker
		}
		req, err := pep508.ParseRequirement(s)
		if err != nil {
			return nil, fmt.Errorf("lock entry %s: %w", p.Name, err)
		}
		pins = append(pins, Requirement{Requirement: req, File: "lock"})
	}
	var cutoff time.Time
	if l.ExcludeNewer != "" {
		if cutoff, err = time.Parse(time.RFC3339, l.ExcludeNewer); err != nil {
			return nil, fmt.Errorf("exclude-newer: %w", err)
		}
	}
	return Resolve(ctx, idx, Input{Requirements: pins, Extra: extra, Targets: targets, ExcludeNewer: cutoff}, rep)
}

func parseTargets(in []string, glibc wheeltag.Glibc) ([]wheeltag.Target, []string, error) {
	if len(in) == 0 {
		return nil, nil, fmt.Errorf("no targets: give at least one --target such as cp313-x86_64")
	}
	var ts []wheeltag.Target
	seen := map[string]bool{}
	for _, s := range in {
		t, err := wheeltag.ParseTarget(s, glibc)
		if err != nil {
			return nil, nil, fmt.Errorf("--target: %w", err)
		}
		if !seen[t.String()] {
			seen[t.String()] = true
			ts = append(ts, t)
		}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].String() < ts[j].String() })
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.String()
	}
	return ts, names, nil
}

func parseExtra(in []string) ([]Requirement, error) {
	var out []Requirement
	for _, s := range in {
		r, err := pep508.ParseRequirement(s)
		if err != nil {
			return nil, fmt.Errorf("extra requirement %q: %w", s, err)
		}
		if r.URL != "" {
			return nil, fmt.Errorf("extra requirement %q: direct URLs cannot be locked from an index", s)
		}
		out = append(out, Requirement{Requirement: r})
	}
	return out, nil
}

// requiresPython is the range of CPython versions the targets span.
func requiresPython(ts []wheeltag.Target) string {
	lo, hi := ts[0].Minor, ts[0].Minor
	for _, t := range ts {
		lo, hi = min(lo, t.Minor), max(hi, t.Minor)
	}
	return fmt.Sprintf(">=3.%d,<3.%d", lo, hi+1)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
