package lockfile

import (
	"github.com/bitpoll-install/bitpoll-install/httpretry"

	"encoding/base64"
	"path"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bitpoll-install/bitpoll-install/pyspec/pep440"
	"github.com/bitpoll-install/bitpoll-install/pyspec/pep508"
	"github.com/bitpoll-install/bitpoll-install/pyspec/wheeltag"
)

var (
	sha256Hex   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	gitID       = regexp.MustCompile(`^[0-9a-f]{40}$`)
	projectName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
)

// Check validates l: every field's syntax, and that the packages cover
// every target. The error, if any, is an ErrorList with field paths and no
// lines (Parse adds those).
func (l *Lock) Check() error { return l.check().err() }

func (l *Lock) check() ErrorList {
	var p problems
	if l.LockVersion != Version {
		p.add("lock-version", "lock-version %d is not the one this build writes (%d)", l.LockVersion, Version)
	}
	p.text("created-by", l.CreatedBy, `the tool that wrote the lock, like "bitpoll-install 0.1.0"`)
	if p.required("requires-python", l.RequiresPython, `a PEP 440 range like ">=3.12,<3.15"`) {
		p.specifiers("requires-python", l.RequiresPython)
	}
	var glibc wheeltag.Glibc
	glibcOK := false
	if p.required("glibc", l.Glibc, `the oldest glibc the lock runs on, like "2.28"`) {
		g, err := wheeltag.ParseGlibc(l.Glibc)
		if err != nil {
			p.add("glibc", "%v", err)
		} else {
			glibc, glibcOK = g, true
		}
	}
	var targets []wheeltag.Target
	if len(l.Targets) == 0 {
		p.add("targets", `missing required field (want target names like ["cp313-aarch64", "cp313-x86_64"])`)
	}
	seen := map[string]bool{}
	targetsOK := glibcOK // without the floor no wheel can be matched
	for i, s := range l.Targets {
		t, err := wheeltag.ParseTarget(s, glibc)
		switch {
		case err != nil:
			p.add(index("targets", i), "%v", err)
			targetsOK = false
		case seen[s]:
			p.add(index("targets", i), "duplicate target %q (list each target once)", s)
		default:
			seen[s] = true
			targets = append(targets, t)
		}
	}
	if !targetsOK {
		// Checking files against part of the targets would report
		// wheels of the missing ones as useless.
		targets = nil
	}
	for i, r := range l.ExtraRequirements {
		if _, err := pep508.ParseRequirement(r); err != nil {
			p.add(index("extra-requirements", i), "%v", err)
		}
	}
	if l.ExcludeNewer != "" {
		p.time("exclude-newer", l.ExcludeNewer)
	}
	p.app(&l.App)
	if d := l.App.PackagesDigest; d != "" && d != l.Digest() {
		p.add("app.packages-digest", "%q does not match the packages of the lock (%q): entries were removed, added or changed after it was written, for example by a cut copy; restore the file, or re-lock", d, l.Digest())
	}

	byName := map[string]int{}
	filesOK := make([]bool, len(l.Packages))
	for i := range l.Packages {
		pkg := &l.Packages[i]
		at := index("packages", i)
		filesOK[i] = p.pkg(at, pkg, targets)
		if j, dup := byName[pep508.NormalizeName(pkg.Name)]; dup && pkg.Name != "" {
			p.add(join(at, "name"), "duplicate package %q, also packages[%d] (lock each distribution once)", pkg.Name, j)
		} else {
			byName[pep508.NormalizeName(pkg.Name)] = i
		}
	}
	for i := range l.Packages {
		for j, r := range l.Packages[i].BuildRequires {
			if _, ok := byName[r]; !ok && r == pep508.NormalizeName(r) {
				p.add(index(join(index("packages", i), "build-requires"), j), "%q is not a package in the lock (add it, with build-only = true if it is only for building)", r)
			}
		}
	}
	p.interpreters(l.Interpreters, targets)
	// Each target needs a file for each package its marker selects.
	for _, t := range targets {
		env := pep508.LinuxCPython(t.Minor, t.Arch)
		for i := range l.Packages {
			pkg := &l.Packages[i]
			unmarked := pkg.Sdist != nil && len(pkg.Wheels) > 0 && len(pkg.SdistTargets) == 0 // reported once, above
			if !filesOK[i] || unmarked || !pkg.selects(env) {
				continue
			}
			if _, ok := pkg.Pick(t); !ok {
				if pkg.Sdist != nil {
					p.add(index("packages", i), "%s %s has no wheel for target %s and its sdist is not marked for it (add %q to sdist-targets, or re-lock)", pkg.Name, pkg.Version, t, t.String())
				} else {
					p.add(index("packages", i), "%s %s has no wheel for target %s and no sdist (add a wheel or sdist, or narrow the marker)", pkg.Name, pkg.Version, t)
				}
			}
		}
	}
	return p.list
}

// selects reports whether the package's marker holds in env; a marker
// that does not parse selects nothing (check reports it).
func (pkg *Package) selects(env pep508.Env) bool {
	if pkg.Marker == "" {
		return true
	}
	m, err := pep508.ParseMarker(pkg.Marker)
	return err == nil && m.Evaluate(env, nil)
}

func (p *problems) app(a *App) {
	if p.required("app.name", a.Name, `the application's project name, like "bitpoll"`) {
		p.name("app.name", a.Name)
	}
	if p.required("app.version", a.Version, `the application's version, like "0.11.0"`) {
		p.version("app.version", a.Version)
	}
	if p.required("app.url", a.URL, "where the source can be fetched, an https or file URL") {
		p.url("app.url", a.URL)
	}
	if a.Commit != "" && !gitID.MatchString(a.Commit) {
		p.add("app.commit", "%q is not a git commit id (want 40 lowercase hex digits)", a.Commit)
	}
	if p.required("app.tree", a.Tree, "the git tree id of the source, 40 lowercase hex digits") && !gitID.MatchString(a.Tree) {
		p.add("app.tree", "%q is not a git tree id (want 40 lowercase hex digits)", a.Tree)
	}
	if a.NarHash != "" && !isSRISHA256(a.NarHash) {
		p.add("app.nar-hash", `%q is not an SRI sha256 hash (want "sha256-" and 44 base64 characters, as "nix hash path" prints)`, a.NarHash)
	}
	if p.required("app.requirements", a.Requirements, `the requirements file in the source tree, like "requirements.txt"`) {
		r := a.Requirements
		if path.IsAbs(r) || path.Clean(r) != r || r == ".." || strings.HasPrefix(r, "../") || strings.Contains(r, "\\") {
			p.add("app.requirements", "%q is not a clean relative path inside the source tree (want one like \"requirements.txt\")", r)
		}
	}
}

func isSRISHA256(s string) bool {
	b64, ok := strings.CutPrefix(s, "sha256-")
	if !ok || len(b64) != 44 {
		return false
	}
	sum, err := base64.StdEncoding.Strict().DecodeString(b64)
	return err == nil && len(sum) == 32
}

// pkg checks one package and reports whether all its file names parse,
// without which its target coverage cannot be judged.
func (p *problems) pkg(at string, pkg *Package, targets []wheeltag.Target) (filesOK bool) {
	filesOK = true
	if p.required(join(at, "name"), pkg.Name, "the PEP 503 normalised project name") {
		p.name(join(at, "name"), pkg.Name)
	}
	var version pep440.Version
	versionOK := false
	if p.required(join(at, "version"), pkg.Version, "the PEP 440 version") {
		v, err := pep440.Parse(pkg.Version)
		if err != nil {
			p.add(join(at, "version"), "%v", err)
		} else {
			version, versionOK = v, true
		}
	}
	if pkg.Marker != "" {
		if _, err := pep508.ParseMarker(pkg.Marker); err != nil {
			p.add(join(at, "marker"), "%v", err)
		}
	}
	if pkg.RequiresPython != "" {
		p.specifiers(join(at, "requires-python"), pkg.RequiresPython)
	}
	if len(pkg.BuildRequires) > 0 && pkg.Sdist == nil {
		p.add(join(at, "build-requires"), "set without an sdist (build requirements only apply to building one; remove them or add the sdist)")
	}
	for i, r := range pkg.BuildRequires {
		if r == "" || pep508.NormalizeName(r) != r || !projectName.MatchString(r) {
			p.add(index(join(at, "build-requires"), i), "%q is not a normalised project name (want e.g. %q)", r, pep508.NormalizeName(r))
		}
	}
	if pkg.Sdist == nil && len(pkg.Wheels) == 0 {
		p.add(at, "%s %s has neither wheels nor an sdist (want at least one [[packages.wheels]] or an sdist)", pkg.Name, pkg.Version)
	}
	want := pep508.NormalizeName(pkg.Name) // compare files even when the name is misspelt
	if pkg.Sdist != nil {
		sp := join(at, "sdist")
		p.file(sp, pkg.Sdist)
		if n := pkg.Sdist.Name; n != "" {
			name, ver, ok := splitSdist(n)
			switch {
			case !ok:
				p.add(join(sp, "name"), "%q is not an sdist file name (want <name>-<version>.tar.gz or .zip)", n)
			case pep508.NormalizeName(name) != want:
				p.add(join(sp, "name"), "%q is for project %q, not %q", n, pep508.NormalizeName(name), want)
			case versionOK && !sameVersion(ver, version):
				p.add(join(sp, "name"), "%q is for version %q, not %q", n, ver, pkg.Version)
			}
		}
	}
	p.sdistTargets(at, pkg, targets)
	names := map[string]bool{}
	for i := range pkg.Wheels {
		w := &pkg.Wheels[i]
		wp := index(join(at, "wheels"), i)
		p.file(wp, w)
		if w.Name == "" {
			continue
		}
		if names[w.Name] {
			p.add(join(wp, "name"), "duplicate wheel %q (list each file once)", w.Name)
		}
		names[w.Name] = true
		f, err := wheeltag.ParseFilename(w.Name)
		switch {
		case err != nil:
			p.add(join(wp, "name"), "%v", err)
			filesOK = false
		case f.Name != want:
			p.add(join(wp, "name"), "%q is for project %q, not %q", w.Name, f.Name, want)
		case versionOK && !sameVersion(f.Version, version):
			p.add(join(wp, "name"), "%q is for version %q, not %q", w.Name, f.Version, pkg.Version)
		case len(targets) > 0 && !anyRank(targets, f):
			p.add(join(wp, "name"), "%q matches none of the targets %s (remove it, or add its target)", w.Name, targetList(targets))
		}
	}
	return filesOK
}

// sdistTargets checks that a package with both wheels and an sdist says
// which targets build the sdist, and that each one named is a target of the
// lock without a fitting wheel: the fallback is explicit, never silent.
func (p *problems) sdistTargets(at string, pkg *Package, targets []wheeltag.Target) {
	st := join(at, "sdist-targets")
	switch {
	case len(pkg.SdistTargets) == 0:
		if pkg.Sdist != nil && len(pkg.Wheels) > 0 {
			p.add(at, "%s %s has wheels and an sdist but no sdist-targets (name the targets without a wheel that build the sdist, or re-lock)", pkg.Name, pkg.Version)
		}
		return
	case pkg.Sdist == nil:
		p.add(st, "set without an sdist (it names the targets that build the sdist; remove it or add the sdist)")
		return
	case len(pkg.Wheels) == 0:
		p.add(st, "set on a package without wheels, which builds its sdist on every target (remove sdist-targets)")
		return
	}
	byName := map[string]wheeltag.Target{}
	for _, t := range targets {
		byName[t.String()] = t
	}
	seen := map[string]bool{}
	for i, s := range pkg.SdistTargets {
		ip := index(st, i)
		if seen[s] {
			p.add(ip, "duplicate target %q (list each target once)", s)
			continue
		}
		seen[s] = true
		if targets == nil {
			continue // the lock's targets did not parse; reported there
		}
		t, ok := byName[s]
		if !ok {
			p.add(ip, "%q is not a target of the lock (want one of %s)", s, targetList(targets))
			continue
		}
		for _, w := range pkg.Wheels {
			if f, err := wheeltag.ParseFilename(w.Name); err == nil {
				if _, fits := t.Rank(f); fits {
					p.add(ip, "%q has the wheel %q, so it must not build the sdist (remove the target from sdist-targets)", s, w.Name)
					break
				}
			}
		}
	}
}

func anyRank(targets []wheeltag.Target, f wheeltag.Filename) bool {
	for _, t := range targets {
		if _, ok := t.Rank(f); ok {
			return true
		}
	}
	return false
}

func targetList(targets []wheeltag.Target) string {
	s := make([]string, len(targets))
	for i, t := range targets {
		s[i] = t.String()
	}
	return strings.Join(s, ", ")
}

func sameVersion(s string, v pep440.Version) bool {
	w, err := pep440.Parse(s)
	return err == nil && w.Compare(v) == 0
}

// splitSdist splits "name-1.0.tar.gz" at its last dash.
func splitSdist(fn string) (name, version string, ok bool) {
	stem, ok := strings.CutSuffix(fn, ".tar.gz")
	if !ok {
		if stem, ok = strings.CutSuffix(fn, ".zip"); !ok {
			return "", "", false
		}
	}
	i := strings.LastIndexByte(stem, '-')
	if i <= 0 || i == len(stem)-1 {
		return "", "", false
	}
	return stem[:i], stem[i+1:], true
}

func (p *problems) file(at string, f *File) {
	p.required(join(at, "name"), f.Name, "the file name")
	if strings.ContainsAny(f.Name, "/\\") {
		p.add(join(at, "name"), "%q is not a plain file name (want no slashes)", f.Name)
	}
	if p.required(join(at, "url"), f.URL, "an https or file URL") {
		p.url(join(at, "url"), f.URL)
	}
	switch {
	case f.Size == 0:
		p.add(join(at, "size"), "missing or 0 (want the file's size in bytes, more than 0)")
	case f.Size < 0:
		p.add(join(at, "size"), "%d is not a file size (want the file's size in bytes, more than 0)", f.Size)
	}
	if f.UploadTime != "" {
		p.time(join(at, "upload-time"), f.UploadTime)
	}
	if p.required(join(at, "hashes.sha256"), f.SHA256, "the file's sha256 digest, 64 lowercase hex digits") && !sha256Hex.MatchString(f.SHA256) {
		p.add(join(at, "hashes.sha256"), "%q is not a sha256 digest (want 64 lowercase hex digits)", f.SHA256)
	}
}

// required reports a missing value and returns whether s is set.
func (p *problems) required(at, s, want string) bool {
	if s == "" {
		p.add(at, "missing required field (want %s)", want)
		return false
	}
	if !utf8.ValidString(s) {
		p.add(at, "%q is not valid UTF-8", s)
		return false
	}
	return true
}

func (p *problems) text(at, s, want string) {
	if p.required(at, s, want) && strings.ContainsAny(s, "\n\r") {
		p.add(at, "%q spans lines (want one line)", s)
	}
}

func (p *problems) name(at, s string) {
	if n := pep508.NormalizeName(s); n != s || !projectName.MatchString(s) {
		p.add(at, "%q is not a normalised project name (want lowercase letters, digits and single dashes, like %q)", s, n)
	}
}

func (p *problems) version(at, s string) {
	if _, err := pep440.Parse(s); err != nil {
		p.add(at, "%v", err)
	}
}

func (p *problems) specifiers(at, s string) {
	if _, err := pep440.ParseSpecifiers(s); err != nil {
		p.add(at, "%v", err)
	}
}

func (p *problems) time(at, s string) {
	if _, err := canonicalTime(s); err != nil {
		p.add(at, "%q is not an RFC 3339 date-time (want one with a time zone, like \"2026-05-06T12:00:00Z\")", s)
	}
}

// canonicalTime returns s in UTC with only the fraction digits it needs.
func canonicalTime(s string) (string, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return "", err
	}
	return t.UTC().Format(time.RFC3339Nano), nil
}

// url holds s to the fetcher's own rule, so that a lock that passes the
// check is one the fetcher takes.
func (p *problems) url(at, s string) {
	if _, err := httpretry.CheckURL(s); err != nil {
		p.add(at, "%v", err)
	}
}
