// Package resolve turns an app's pinned requirements and a list of targets
// into the locked package set of bitpoll.lock.
//
// The app's requirements file is expected to pin nearly everything (Bitpoll
// ships a pip-compile'd one), so resolution is mostly verification: pick the
// best file of each pin for each target by wheel-tag priority, read its
// metadata through PEP 658, and check that every Requires-Dist is met by a
// pin. What the pins miss is resolved to the newest version that satisfies
// every specifier, and reported. Version parsing lives in pep440, markers in
// pep508, tags in wheeltag and the index protocol in index; this package
// holds only the resolution logic.
package resolve

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/pyspec/pep440"
	"github.com/bitpoll-install/bitpoll-install/pyspec/pep508"
	"github.com/bitpoll-install/bitpoll-install/pyspec/wheeltag"
	"github.com/bitpoll-install/bitpoll-install/resolve/index"
)

// Index is what resolution needs of a package index.
type Index interface {
	Project(ctx context.Context, name string) (*index.Project, error)
	Metadata(ctx context.Context, f index.File) (*index.Metadata, error)
	SdistBuildRequires(ctx context.Context, f index.File) ([]string, error)
}

// Reporter receives what the resolver decided on its own, for the user.
type Reporter interface {
	Notef(format string, args ...any)
}

type nopReporter struct{}

func (nopReporter) Notef(string, ...any) {}

// Input is what to resolve.
type Input struct {
	Requirements []Requirement // the app's pins
	Extra        []Requirement // added to the pins (WSGI server, database driver)
	Targets      []wheeltag.Target
	// ExcludeNewer hides files uploaded after it, so that a rerun with the
	// same inputs gives the same lock. Zero means no cut-off.
	ExcludeNewer time.Time
}

// maxRestarts bounds the backtracking on unpinned packages.
const maxRestarts = 64

// Resolve locks in for every target. The packages come back sorted by name.
func Resolve(ctx context.Context, idx Index, in Input, rep Reporter) ([]lockfile.Package, error) {
	if rep == nil {
		rep = nopReporter{}
	}
	if len(in.Targets) == 0 {
		return nil, errors.New("resolve: no targets given")
	}
	r := &resolver{
		idx:      idx,
		in:       in,
		projects: map[string]*project{},
		metadata: map[string]*index.Metadata{},
		excluded: map[string]map[string]bool{},
	}
	for attempt := 0; ; attempt++ {
		if attempt > maxRestarts {
			return nil, fmt.Errorf("resolve: no consistent set found after %d attempts; pin the packages named above", maxRestarts)
		}
		pkgs, err := r.run(ctx)
		var re *restart
		if errors.As(err, &re) {
			r.excluded[re.name] = setAdd(r.excluded[re.name], re.version)
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, n := range r.notes {
			rep.Notef("%s", n)
		}
		return pkgs, nil
	}
}

// restart asks Resolve to try again without one version of an unpinned package.
type restart struct{ name, version string }

func (e *restart) Error() string { return "restart without " + e.name + " " + e.version }

type resolver struct {
	idx Index
	in  Input

	mu       sync.Mutex
	projects map[string]*project
	metadata map[string]*index.Metadata // by file URL

	excluded map[string]map[string]bool // name -> versions ruled out by backtracking

	// Per attempt.
	pkgs  map[string]*pkg
	notes []string
}

type project struct {
	name     string
	releases []*release // newest first
}

type release struct {
	version pep440.Version
	wheels  []wheelFile
	sdist   *index.File
	yanked  bool // every file is yanked
}

type wheelFile struct {
	file index.File
	name wheeltag.Filename
}

type constraint struct {
	spec pep440.Specifiers
	from string // who asked: "requirements.txt:12" or "django 6.0.5"
	pin  bool   // an exact pin of the app or of the extra requirements
	// by and byVersion name the package that asked, if one did.
	by, byVersion string
}

type mode int

const (
	runtime mode = iota
	build
)

type need struct {
	target int
	mode   mode
}

type pkg struct {
	name      string
	cons      []constraint
	chosen    *release
	needs     map[need]map[string]bool // need -> requested extras
	files     map[int]index.File       // target index -> chosen file
	sdistT    map[int]bool             // target index -> its file is the sdist (no wheel fits)
	buildRq   []string                 // normalised names, for packages built from their sdist
	buildReqs []pep508.Requirement
	// expanded records which (need, extra) pairs had their dependencies added.
	expanded map[need]map[string]bool
}

func (r *resolver) run(ctx context.Context) ([]lockfile.Package, error) {
	r.pkgs = map[string]*pkg{}
	r.notes = nil
	for _, req := range r.in.Requirements {
		r.addRoot(req)
	}
	for _, req := range r.in.Extra {
		r.addRoot(req)
	}
	for {
		if err := r.fetchProjects(ctx); err != nil {
			return nil, err
		}
		if err := r.chooseVersions(); err != nil {
			return nil, err
		}
		if err := r.selectFiles(); err != nil {
			return nil, err
		}
		if err := r.fetchMetadata(ctx); err != nil {
			return nil, err
		}
		grew, err := r.expand(ctx)
		if err != nil {
			return nil, err
		}
		if !grew {
			break
		}
	}
	return r.packages(), nil
}

func (r *resolver) pkg(name string) *pkg {
	p := r.pkgs[name]
	if p == nil {
		p = &pkg{name: name, needs: map[need]map[string]bool{}, files: map[int]index.File{}, sdistT: map[int]bool{}, expanded: map[need]map[string]bool{}}
		r.pkgs[name] = p
	}
	return p
}

// addRoot adds a top-level requirement for every target whose environment
// its marker selects.
func (r *resolver) addRoot(req Requirement) {
	for ti, t := range r.in.Targets {
		if req.Marker != nil && !req.Marker.Evaluate(env(t), nil) {
			continue
		}
		p := r.pkg(req.Name)
		p.addNeed(need{ti, runtime}, req.Extras)
		p.addConstraint(constraint{spec: req.Specifiers, from: req.Where(), pin: isPin(req.Specifiers)})
	}
}

func (p *pkg) addNeed(n need, extras []string) bool {
	set := p.needs[n]
	grew := false
	if set == nil {
		set = map[string]bool{}
		p.needs[n] = set
		grew = true
	}
	for _, e := range extras {
		if !set[e] {
			set[e] = true
			grew = true
		}
	}
	return grew
}

func (p *pkg) addConstraint(c constraint) {
	for _, have := range p.cons {
		if have.from == c.from && have.spec.String() == c.spec.String() {
			return
		}
	}
	p.cons = append(p.cons, c)
}

// isPin reports whether specs is one exact "==" version.
func isPin(specs pep440.Specifiers) bool {
	return len(specs) == 1 && (specs[0].Op == "==" || specs[0].Op == "===") && !strings.HasSuffix(specs[0].Version, ".*")
}

func env(t wheeltag.Target) pep508.Env { return pep508.LinuxCPython(t.Minor, t.Arch) }

func (r *resolver) fetchProjects(ctx context.Context) error {
	var missing []string
	r.mu.Lock()
	for name := range r.pkgs {
		if r.projects[name] == nil {
			missing = append(missing, name)
		}
	}
	r.mu.Unlock()
	sort.Strings(missing)
	g, gctx := errgroup.WithContext(ctx)
	for _, name := range missing {
		g.Go(func() error {
			ip, err := r.idx.Project(gctx, name)
			if err != nil {
				return fmt.Errorf("look up %s: %w", name, err)
			}
			p, err := r.newProject(name, ip)
			if err != nil {
				return err
			}
			r.mu.Lock()
			r.projects[name] = p
			r.mu.Unlock()
			return nil
		})
	}
	return g.Wait()
}

// newProject groups an index page's files by version, dropping files newer
// than the cut-off and files whose names don't parse (other packaging formats).
func (r *resolver) newProject(name string, ip *index.Project) (*project, error) {
	byVersion := map[string]*release{}
	yankedAll := map[string]bool{}
	for _, f := range ip.Files {
		if !r.in.ExcludeNewer.IsZero() && f.UploadTime.After(r.in.ExcludeNewer) {
			continue
		}
		var vs string
		var wf *wheelFile
		switch {
		case strings.HasSuffix(f.Filename, ".whl"):
			fn, err := wheeltag.ParseFilename(f.Filename)
			if err != nil || fn.Name != name {
				continue
			}
			vs = fn.Version
			wf = &wheelFile{file: f, name: fn}
		case wheeltag.IsSdist(f.Filename):
			v, ok := sdistVersion(name, f.Filename)
			if !ok {
				continue
			}
			vs = v
		default:
			continue
		}
		v, err := pep440.Parse(vs)
		if err != nil {
			continue // legacy versions are not installable by modern tools either
		}
		key := v.String()
		rel := byVersion[key]
		if rel == nil {
			rel = &release{version: v}
			byVersion[key] = rel
			yankedAll[key] = true
		}
		if !f.Yanked {
			yankedAll[key] = false
		}
		if wf != nil {
			rel.wheels = append(rel.wheels, *wf)
		} else if rel.sdist == nil || (strings.HasSuffix(f.Filename, ".tar.gz") && !strings.HasSuffix(rel.sdist.Filename, ".tar.gz")) {
			f := f
			rel.sdist = &f // PEP 625 prefers .tar.gz
		}
	}
	p := &project{name: name}
	for k, rel := range byVersion {
		rel.yanked = yankedAll[k]
		p.releases = append(p.releases, rel)
	}
	sort.Slice(p.releases, func(i, j int) bool { return p.releases[i].version.Compare(p.releases[j].version) > 0 })
	return p, nil
}

// sdistVersion takes the version out of "<name>-<version>.tar.gz", where the
// name may be spelled in any PEP 503-equivalent way.
func sdistVersion(name, filename string) (string, bool) {
	base := strings.TrimSuffix(strings.TrimSuffix(filename, ".tar.gz"), ".zip")
	// The version is after the last "-" whose prefix normalises to name.
	for i := len(base) - 1; i > 0; i-- {
		if base[i] == '-' && pep508.NormalizeName(base[:i]) == name {
			return base[i+1:], true
		}
	}
	return "", false
}

// chooseVersions picks a version for every package that has none yet, and
// checks chosen versions against constraints added since.
func (r *resolver) chooseVersions() error {
	for _, name := range sortedKeys(r.pkgs) {
		p := r.pkgs[name]
		proj := r.projects[name]
		if p.chosen != nil {
			if c, ok := p.violated(p.chosen.version); ok {
				return r.conflict(p, c)
			}
			continue
		}
		rel, err := r.choose(p, proj)
		if err != nil {
			return err
		}
		p.chosen = rel
		if !p.pinned() {
			r.notes = append(r.notes, fmt.Sprintf("resolved %s to %s (not pinned; required by %s)", name, rel.version, p.requiredBy()))
		}
	}
	return nil
}

func (p *pkg) pinned() bool {
	for _, c := range p.cons {
		if c.pin {
			return true
		}
	}
	return false
}

func (p *pkg) requiredBy() string {
	var from []string
	for _, c := range p.cons {
		s := c.from
		if len(c.spec) > 0 {
			s += " (" + c.spec.String() + ")"
		}
		from = append(from, s)
	}
	sort.Strings(from)
	return strings.Join(slices.Compact(from), ", ")
}

func (p *pkg) violated(v pep440.Version) (constraint, bool) {
	for _, c := range p.cons {
		if !c.spec.Contains(v, true) {
			return c, true
		}
	}
	return constraint{}, false
}

// conflict explains a chosen version that a later constraint rules out. A
// pinned version is the app's decision, so that is an error; an unpinned one
// is retried without that version.
func (r *resolver) conflict(p *pkg, c constraint) error {
	if !p.pinned() {
		return &restart{name: p.name, version: p.chosen.version.String()}
	}
	if re := r.blameUnpinned(c); re != nil {
		return re
	}
	var pin constraint
	for _, have := range p.cons {
		if have.pin {
			pin = have
			break
		}
	}
	return fmt.Errorf("%s requires %s%s, but %s pins %s %s: update the pin or drop the requirement",
		c.from, p.name, c.spec, pin.from, p.name, p.chosen.version)
}

// blameUnpinned returns a restart without the version of the unpinned
// package that imposed c, if one did: another version of it may accept the
// pin.
func (r *resolver) blameUnpinned(c constraint) error {
	if c.by == "" {
		return nil
	}
	if by := r.pkgs[c.by]; by != nil && !by.pinned() {
		return &restart{name: c.by, version: c.byVersion}
	}
	return nil
}

func (r *resolver) choose(p *pkg, proj *project) (*release, error) {
	if p.pinned() {
		var want constraint
		for _, c := range p.cons {
			if c.pin {
				want = c
				break
			}
		}
		v, err := pep440.Parse(strings.TrimSpace(want.spec[0].Version))
		if err != nil {
			return nil, fmt.Errorf("%s: pin %s%s: %w", want.from, p.name, want.spec, err)
		}
		for _, rel := range proj.releases {
			if rel.version.Compare(v) == 0 {
				if c, bad := p.violated(rel.version); bad {
					if re := r.blameUnpinned(c); re != nil {
						return nil, re
					}
					return nil, fmt.Errorf("%s requires %s%s, but %s pins %s %s: update the pin", c.from, p.name, c.spec, want.from, p.name, rel.version)
				}
				return rel, nil
			}
		}
		return nil, fmt.Errorf("%s: %s %s is not on the index%s: fix the pin", want.from, p.name, v, r.cutoffHint())
	}
	pre := false
	for _, c := range p.cons {
		for _, s := range c.spec {
			if sv, err := pep440.Parse(strings.TrimSuffix(s.Version, ".*")); err == nil && sv.IsPrerelease() {
				pre = true
			}
		}
	}
	for _, rel := range proj.releases {
		if rel.yanked || r.excluded[p.name][rel.version.String()] {
			continue
		}
		if rel.version.IsPrerelease() && !pre {
			continue
		}
		if _, bad := p.violated(rel.version); bad {
			continue
		}
		if r.coversTargets(p, rel) {
			return rel, nil
		}
	}
	return nil, fmt.Errorf("no version of %s satisfies %s with files for %s%s", p.name, p.requiredBy(), r.targetNames(p), r.cutoffHint())
}

func (r *resolver) cutoffHint() string {
	if r.in.ExcludeNewer.IsZero() {
		return ""
	}
	return " (files uploaded after " + r.in.ExcludeNewer.Format(time.RFC3339) + " are excluded)"
}

func (r *resolver) targetNames(p *pkg) string {
	seen := map[int]bool{}
	var names []string
	for n := range p.needs {
		if !seen[n.target] {
			seen[n.target] = true
			names = append(names, r.in.Targets[n.target].String())
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// coversTargets reports whether rel can be installed on every target p is
// needed on: by a wheel, or else by its sdist.
func (r *resolver) coversTargets(p *pkg, rel *release) bool {
	for n := range p.needs {
		if _, _, err := r.pickFile(rel, n.target); err != nil {
			return false
		}
	}
	return true
}

// pickFile chooses rel's file for target ti: the wheel of best tag priority
// whose Requires-Python admits the target, else the sdist, which the lock
// then marks for that target (sdist-targets) when other targets have wheels.
func (r *resolver) pickFile(rel *release, ti int) (index.File, bool, error) {
	t := r.in.Targets[ti]
	best, bestRank := -1, 0
	for i, w := range rel.wheels {
		rank, ok := t.Rank(w.name)
		if !ok || !pythonAllows(w.file.RequiresPython, t) {
			continue
		}
		if best < 0 || rank < bestRank || (rank == bestRank && w.file.Filename < rel.wheels[best].file.Filename) {
			best, bestRank = i, rank
		}
	}
	if best >= 0 {
		return rel.wheels[best].file, false, nil
	}
	if rel.sdist != nil && pythonAllows(rel.sdist.RequiresPython, t) {
		return *rel.sdist, true, nil
	}
	return index.File{}, false, errNoFile
}

var errNoFile = errors.New("no file for target")

// pythonAllows reports whether a Requires-Python admits the target's CPython
// minor version (some patch release of it).
func pythonAllows(requires string, t wheeltag.Target) bool {
	if strings.TrimSpace(requires) == "" {
		return true
	}
	specs, err := pep440.ParseSpecifiers(requires)
	if err != nil {
		return true // an unparseable Requires-Python is ignored, as pip does
	}
	for _, patch := range []int{0, 99} {
		if specs.Contains(pep440.MustParse(fmt.Sprintf("3.%d.%d", t.Minor, patch)), true) {
			return true
		}
	}
	return false
}

func (r *resolver) selectFiles() error {
	for _, name := range sortedKeys(r.pkgs) {
		p := r.pkgs[name]
		for _, n := range sortedNeeds(p.needs) {
			if _, ok := p.files[n.target]; ok {
				continue
			}
			f, sdist, err := r.pickFile(p.chosen, n.target)
			if err != nil {
				if !p.pinned() {
					return &restart{name: p.name, version: p.chosen.version.String()}
				}
				return r.noFileError(p, n.target)
			}
			p.files[n.target] = f
			if sdist {
				p.sdistT[n.target] = true
			}
		}
	}
	return nil
}

// wheelFile returns the wheel p uses on its lowest-numbered target that has
// one, and false when p is built from its sdist everywhere.
func (p *pkg) wheelFile() (index.File, bool) {
	for _, ti := range sortedKeys(p.files) {
		if !p.sdistT[ti] {
			return p.files[ti], true
		}
	}
	return index.File{}, false
}

// sdistNote tells how p's sdist entered the lock: on every target, or on
// the named ones that lack a wheel.
func (r *resolver) sdistNote(p *pkg) string {
	if _, ok := p.wheelFile(); !ok {
		return fmt.Sprintf("%s %s has no wheel: locked as an sdist, built from source at install", p.name, p.chosen.version)
	}
	var ts []string
	for _, ti := range sortedKeys(p.sdistT) {
		ts = append(ts, r.in.Targets[ti].String())
	}
	return fmt.Sprintf("%s %s has no wheel for %s: locked with its sdist marked for those targets (sdist-targets), built from source there at install", p.name, p.chosen.version, strings.Join(ts, ", "))
}

// noFileError names the package, version and target, and the nearest
// versions that do have a wheel for that target.
func (r *resolver) noFileError(p *pkg, ti int) error {
	t := r.in.Targets[ti]
	proj := r.projects[p.name]
	pos := slices.Index(proj.releases, p.chosen)
	var newer, older string
	for i := pos - 1; i >= 0 && newer == ""; i-- {
		if f, sdist, err := r.pickFile(proj.releases[i], ti); err == nil && !sdist && f.Filename != "" {
			newer = proj.releases[i].version.String()
		}
	}
	for i := pos + 1; i < len(proj.releases) && older == ""; i++ {
		if f, sdist, err := r.pickFile(proj.releases[i], ti); err == nil && !sdist && f.Filename != "" {
			older = proj.releases[i].version.String()
		}
	}
	var near []string
	if newer != "" {
		near = append(near, newer+" (newer)")
	}
	if older != "" {
		near = append(near, older+" (older)")
	}
	hint := "no version of it has one"
	if len(near) > 0 {
		hint = "nearest with one: " + strings.Join(near, ", ")
	}
	why := "no wheel"
	if p.chosen.sdist == nil {
		why = "no wheel and no sdist"
	}
	return fmt.Errorf("%s %s has %s for target %s (%s): drop the target or pin another version",
		p.name, p.chosen.version, why, t, hint)
}

func (r *resolver) fetchMetadata(ctx context.Context) error {
	var todo []index.File
	seen := map[string]bool{}
	r.mu.Lock()
	for _, name := range sortedKeys(r.pkgs) {
		p := r.pkgs[name]
		for _, f := range p.files {
			if wheeltag.IsSdist(f.Filename) || seen[f.URL] || r.metadata[f.URL] != nil {
				continue
			}
			seen[f.URL] = true
			todo = append(todo, f)
		}
	}
	r.mu.Unlock()
	g, gctx := errgroup.WithContext(ctx)
	for _, f := range todo {
		g.Go(func() error {
			md, err := r.idx.Metadata(gctx, f)
			if err != nil {
				return fmt.Errorf("read metadata of %s: %w", f.Filename, err)
			}
			r.mu.Lock()
			r.metadata[f.URL] = md
			r.mu.Unlock()
			return nil
		})
	}
	return g.Wait()
}

// expand adds the dependencies of every (package, target, extra) not yet
// expanded. It reports whether anything new was added.
func (r *resolver) expand(ctx context.Context) (bool, error) {
	grew := false
	for _, name := range sortedKeys(r.pkgs) {
		p := r.pkgs[name]
		for _, n := range sortedNeeds(p.needs) {
			extras := append([]string{""}, sortedKeys(p.needs[n])...)
			done := p.expanded[n]
			if done == nil {
				done = map[string]bool{}
				p.expanded[n] = done
			}
			for _, extra := range extras {
				if done[extra] {
					continue
				}
				done[extra] = true
				g, err := r.expandOne(ctx, p, n, extra)
				if err != nil {
					return false, err
				}
				grew = grew || g
			}
		}
	}
	return grew, nil
}

func (r *resolver) expandOne(ctx context.Context, p *pkg, n need, extra string) (bool, error) {
	from := p.name + " " + p.chosen.version.String()
	grew := false
	wf := p.files[n.target]
	if p.sdistT[n.target] {
		if extra == "" {
			g, err := r.expandBuild(ctx, p, n)
			if err != nil {
				return false, err
			}
			grew = g
		}
		// An sdist's dependencies are only known once built. Where the
		// same release has a wheel for another target, its metadata stands
		// in, evaluated for this target.
		var ok bool
		if wf, ok = p.wheelFile(); !ok {
			return grew, nil
		}
	}
	md := r.metadata[wf.URL]
	if md == nil {
		return false, fmt.Errorf("internal: no metadata for %s", wf.Filename)
	}
	if mv, err := pep440.Parse(md.Version); pep508.NormalizeName(md.Name) != p.name || err != nil || mv.Compare(p.chosen.version) != 0 {
		return false, fmt.Errorf("metadata of %s says %s %s: the index is inconsistent", wf.Filename, md.Name, md.Version)
	}
	var extras []string
	if extra != "" {
		extras = []string{extra}
		if !slices.ContainsFunc(md.ProvidesExtra, func(e string) bool { return pep508.NormalizeName(e) == extra }) {
			r.notes = append(r.notes, fmt.Sprintf("%s does not provide the extra %q", from, extra))
		}
	}
	e := env(r.in.Targets[n.target])
	for _, s := range md.RequiresDist {
		req, err := pep508.ParseRequirement(s)
		if err != nil {
			return false, fmt.Errorf("%s: Requires-Dist %q: %w", from, s, err)
		}
		if req.Marker != nil && !req.Marker.Evaluate(e, extras) {
			continue
		}
		if extra != "" && (req.Marker == nil || req.Marker.Evaluate(e, nil)) {
			continue // already added by the base expansion
		}
		if req.URL != "" {
			return false, fmt.Errorf("%s depends on a direct URL (%s): it cannot be locked from an index", from, s)
		}
		if r.addDep(req, n, constraint{from: from, by: p.name, byVersion: p.chosen.version.String()}) {
			grew = true
		}
	}
	return grew, nil
}

// expandBuild adds the build requirements of p's sdist for target n: they
// are known now, from its pyproject.toml, and are locked like any other
// package.
func (r *resolver) expandBuild(ctx context.Context, p *pkg, n need) (bool, error) {
	from := p.name + " " + p.chosen.version.String()
	if p.buildReqs == nil {
		raw, err := r.idx.SdistBuildRequires(ctx, p.files[n.target])
		if err != nil {
			return false, fmt.Errorf("read build requirements of %s: %w", from, err)
		}
		p.buildReqs = []pep508.Requirement{}
		for _, s := range raw {
			req, err := pep508.ParseRequirement(s)
			if err != nil {
				return false, fmt.Errorf("%s: build requirement %q: %w", from, s, err)
			}
			p.buildReqs = append(p.buildReqs, req)
			p.buildRq = append(p.buildRq, req.Name)
		}
		sort.Strings(p.buildRq)
		p.buildRq = slices.Compact(p.buildRq)
		if _, ok := p.wheelFile(); ok {
			r.notes = append(r.notes, fmt.Sprintf("%s: where it is built from its sdist, its runtime dependencies are taken from its wheels' metadata; its build requirements (%s) are locked", from, strings.Join(raw, ", ")))
		} else {
			r.notes = append(r.notes, fmt.Sprintf("%s is an sdist: its runtime dependencies are checked only when it is built; its build requirements (%s) are locked", from, strings.Join(raw, ", ")))
		}
	}
	grew := false
	for _, req := range p.buildReqs {
		if req.Marker != nil && !req.Marker.Evaluate(env(r.in.Targets[n.target]), nil) {
			continue
		}
		if r.addDep(req, need{n.target, build}, constraint{from: from + " (build)", by: p.name, byVersion: p.chosen.version.String()}) {
			grew = true
		}
	}
	return grew, nil
}

func (r *resolver) addDep(req pep508.Requirement, n need, c constraint) bool {
	d := r.pkg(req.Name)
	before := len(d.cons)
	c.spec = req.Specifiers
	d.addConstraint(c)
	grew := d.addNeed(n, req.Extras)
	return grew || len(d.cons) != before
}

// packages renders the resolution as lock entries.
func (r *resolver) packages() []lockfile.Package {
	var out []lockfile.Package
	for _, name := range sortedKeys(r.pkgs) {
		p := r.pkgs[name]
		rt, bt := map[int]bool{}, map[int]bool{}
		for n := range p.needs {
			if n.mode == runtime {
				rt[n.target] = true
			} else {
				bt[n.target] = true
			}
		}
		lp := lockfile.Package{Name: name, Version: p.chosen.version.String()}
		markerTargets := rt
		if len(rt) == 0 {
			lp.BuildOnly = true
			markerTargets = bt
		}
		lp.Marker = r.marker(markerTargets)
		seen := map[string]bool{}
		wf, hasWheel := p.wheelFile()
		if hasWheel {
			lp.RequiresPython = normalizeRequiresPython(wf.RequiresPython)
		}
		if len(p.sdistT) > 0 {
			r.notes = append(r.notes, r.sdistNote(p))
		}
		for _, ti := range sortedKeys(p.files) {
			f := p.files[ti]
			if lp.RequiresPython == "" {
				lp.RequiresPython = normalizeRequiresPython(f.RequiresPython)
			}
			if p.sdistT[ti] && hasWheel {
				// Explicit in the lock: the targets that build the sdist.
				lp.SdistTargets = append(lp.SdistTargets, r.in.Targets[ti].String())
			}
			if seen[f.URL] {
				continue
			}
			seen[f.URL] = true
			lf := lockfile.File{Name: f.Filename, URL: f.URL, Size: f.Size, SHA256: f.SHA256, UploadTime: f.UploadTime.UTC().Format(time.RFC3339Nano)}
			if p.sdistT[ti] {
				lp.Sdist = &lf
				lp.BuildRequires = p.buildRq
			} else {
				lp.Wheels = append(lp.Wheels, lf)
			}
		}
		sort.Strings(lp.SdistTargets)
		sort.Slice(lp.Wheels, func(i, j int) bool { return lp.Wheels[i].Name < lp.Wheels[j].Name })
		out = append(out, lp)
	}
	return out
}

func normalizeRequiresPython(s string) string {
	specs, err := pep440.ParseSpecifiers(s)
	if err != nil {
		return strings.TrimSpace(s)
	}
	return specs.String()
}

// marker describes a set of targets as a PEP 508 marker; "" means all.
func (r *resolver) marker(set map[int]bool) string {
	if len(set) == len(r.in.Targets) {
		return ""
	}
	archs := map[string]bool{}
	for _, t := range r.in.Targets {
		archs[t.Arch] = true
	}
	// Group by Python version: a version on every arch needs no arch test.
	byMinor := map[int][]string{}
	for ti := range set {
		t := r.in.Targets[ti]
		byMinor[t.Minor] = append(byMinor[t.Minor], t.Arch)
	}
	var terms []string
	for _, minor := range sortedKeys(byMinor) {
		a := byMinor[minor]
		sort.Strings(a)
		py := fmt.Sprintf(`python_version == "3.%d"`, minor)
		if len(a) == len(archs) {
			terms = append(terms, py)
			continue
		}
		for _, arch := range a {
			terms = append(terms, fmt.Sprintf(`%s and platform_machine == %q`, py, arch))
		}
	}
	// All Python versions on one arch reads better as an arch test.
	minors := map[int]bool{}
	for _, t := range r.in.Targets {
		minors[t.Minor] = true
	}
	if len(archs) > 1 {
		for arch := range archs {
			n := 0
			for ti := range set {
				if r.in.Targets[ti].Arch == arch {
					n++
				}
			}
			if n == len(minors) && n == len(set) {
				return fmt.Sprintf(`platform_machine == %q`, arch)
			}
		}
	}
	return strings.Join(terms, " or ")
}

func sortedNeeds(m map[need]map[string]bool) []need {
	out := make([]need, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].target != out[j].target {
			return out[i].target < out[j].target
		}
		return out[i].mode < out[j].mode
	})
	return out
}

func sortedKeys[K interface{ ~int | ~string }, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func setAdd(m map[string]bool, k string) map[string]bool {
	if m == nil {
		m = map[string]bool{}
	}
	m[k] = true
	return m
}
