package lockfile

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bitpoll-install/bitpoll-install/pyspec/pep508"
	"github.com/bitpoll-install/bitpoll-install/pyspec/wheeltag"
)

// Pick returns the file an installer should use for pkg on t: its best
// wheel by tag rank (ties go to the lexically first name), or else its
// sdist when the lock marks it for t: a package without wheels builds its
// sdist everywhere, one with wheels only on the targets its sdist-targets
// name. It reports false when pkg has no file for t.
func (pkg *Package) Pick(t wheeltag.Target) (Selected, bool) {
	best, bestRank := -1, 0
	for i, w := range pkg.Wheels {
		f, err := wheeltag.ParseFilename(w.Name)
		if err != nil {
			continue
		}
		r, ok := t.Rank(f)
		if ok && (best < 0 || r < bestRank || r == bestRank && w.Name < pkg.Wheels[best].Name) {
			best, bestRank = i, r
		}
	}
	if best >= 0 {
		return Selected{Package: pkg, File: pkg.Wheels[best]}, true
	}
	if pkg.SdistFor(t.String()) {
		return Selected{Package: pkg, File: *pkg.Sdist, IsSdist: true}, true
	}
	return Selected{}, false
}

// SdistFor reports whether pkg's sdist is marked for target t ("cp313-aarch64"):
// it has an sdist, and either no wheels or t among its sdist-targets.
func (pkg *Package) SdistFor(t string) bool {
	if pkg.Sdist == nil {
		return false
	}
	if len(pkg.SdistTargets) == 0 {
		return len(pkg.Wheels) == 0
	}
	return slices.Contains(pkg.SdistTargets, t)
}

// ParsedTargets returns the lock's targets with its glibc floor.
func (l *Lock) ParsedTargets() ([]wheeltag.Target, error) {
	g, err := wheeltag.ParseGlibc(l.Glibc)
	if err != nil {
		return nil, fmt.Errorf("parse lock targets: %w", err)
	}
	out := make([]wheeltag.Target, 0, len(l.Targets))
	for _, s := range l.Targets {
		t, err := wheeltag.ParseTarget(s, g)
		if err != nil {
			return nil, fmt.Errorf("parse lock targets: %w", err)
		}
		out = append(out, t)
	}
	return out, nil
}

// Selected is the file chosen for one package on one target.
type Selected struct {
	Package *Package
	File    File
	IsSdist bool
}

// ForTarget returns, in lock order, the installable packages t needs: those
// not build-only whose marker holds on t, each with its best file for t.
func (l *Lock) ForTarget(t wheeltag.Target) ([]Selected, error) {
	env := pep508.LinuxCPython(t.Minor, t.Arch)
	var out []Selected
	var missing []string
	for i := range l.Packages {
		pkg := &l.Packages[i]
		if pkg.BuildOnly {
			continue
		}
		if pkg.Marker != "" {
			m, err := pep508.ParseMarker(pkg.Marker)
			if err != nil {
				return nil, fmt.Errorf("select packages for %s: package %s: %w", t, pkg.Name, err)
			}
			if !m.Evaluate(env, nil) {
				continue
			}
		}
		s, ok := pkg.Pick(t)
		if !ok {
			missing = append(missing, pkg.Name+" "+pkg.Version)
			continue
		}
		out = append(out, s)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("select packages for %s: no wheel and no sdist for %s (re-lock with this target)", t, strings.Join(missing, ", "))
	}
	return out, nil
}

// Files returns every file an install on t reads: ForTarget's pick for
// each package and, when any pick is an sdist, each build-only package's
// file for t, since every build environment gets all of them.
func (l *Lock) Files(t wheeltag.Target) ([]Selected, error) {
	sel, err := l.ForTarget(t)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(sel, func(s Selected) bool { return s.IsSdist }) {
		return sel, nil
	}
	for i := range l.Packages {
		if q := &l.Packages[i]; q.BuildOnly {
			if s, ok := q.Pick(t); ok {
				sel = append(sel, s)
			}
		}
	}
	return sel, nil
}
