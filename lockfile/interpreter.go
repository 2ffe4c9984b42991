package lockfile

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/bitpoll-install/bitpoll-install/pyspec/wheeltag"
)

// Interpreter pins a standalone CPython build (python-build-standalone's
// install_only_stripped archive) for one target, for hosts whose own
// Python fits none of the targets. The lock's [[interpreter]] tables hold
// one per target at most. They are not part of app.packages-digest: they
// decide which interpreter runs the packages, not which packages run.
type Interpreter struct {
	Target         string // a target of the lock, "cp313-x86_64"
	Implementation string // "cpython"
	Version        string // the full CPython version, "3.13.15"
	// Release is the python-build-standalone release tag the build comes
	// from, "20260814".
	Release string
	URL     string
	// Size is the archive's size in bytes; 0 means unknown (the lock
	// could not download the archive), and then only the hash is
	// checked.
	Size   int64
	SHA256 string // hashes.sha256, 64 lowercase hex digits
	// Glibc is the oldest glibc the interpreter runs on, "2.17".
	Glibc string
}

// ImplementationCPython is the one implementation an [[interpreter]] may
// name.
const ImplementationCPython = "cpython"

var (
	pythonVersion = regexp.MustCompile(`^3\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)
	releaseTag    = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z._-]*$`)
)

// Minor is the interpreter's "3.X".
func (it *Interpreter) Minor() string {
	parts := strings.SplitN(it.Version, ".", 3)
	if len(parts) < 2 {
		return it.Version
	}
	return parts[0] + "." + parts[1]
}

// InterpreterFor returns the [[interpreter]] entry of target, if any.
func (l *Lock) InterpreterFor(target string) (Interpreter, bool) {
	for _, it := range l.Interpreters {
		if it.Target == target {
			return it, true
		}
	}
	return Interpreter{}, false
}

// interpreter checks one [[interpreter]] entry; targets are the lock's
// targets, nil when they did not parse.
func (p *problems) interpreter(at string, it *Interpreter, targets []wheeltag.Target) {
	var target *wheeltag.Target
	if p.required(join(at, "target"), it.Target, `one of the lock's targets, like "cp313-x86_64"`) && targets != nil {
		i := slices.IndexFunc(targets, func(t wheeltag.Target) bool { return t.String() == it.Target })
		if i < 0 {
			p.add(join(at, "target"), "%q is not a target of the lock (want one of %s; remove the entry or add the target)", it.Target, targetList(targets))
		} else {
			target = &targets[i]
		}
	}
	if p.required(join(at, "implementation"), it.Implementation, `"cpython"`) && it.Implementation != ImplementationCPython {
		p.add(join(at, "implementation"), "%q is not supported (want %q: the lock's targets are CPython)", it.Implementation, ImplementationCPython)
	}
	if p.required(join(at, "version"), it.Version, `the full CPython version, like "3.13.15"`) {
		switch {
		case !pythonVersion.MatchString(it.Version):
			p.add(join(at, "version"), "%q is not a CPython release version (want 3.X.Y, like \"3.13.15\")", it.Version)
		case target != nil && it.Minor() != "3."+strconv.Itoa(target.Minor):
			p.add(join(at, "version"), "%q does not fit target %q (want a 3.%d.Y version, or re-lock with --python-standalone)", it.Version, it.Target, target.Minor)
		}
	}
	if p.required(join(at, "release"), it.Release, `the python-build-standalone release tag, like "20260814"`) && !releaseTag.MatchString(it.Release) {
		p.add(join(at, "release"), "%q is not a release tag (want letters, digits, '.', '_' and '-', like \"20260814\")", it.Release)
	}
	if p.required(join(at, "url"), it.URL, "an https or file URL of the install_only_stripped archive") {
		p.url(join(at, "url"), it.URL)
	}
	if it.Size < 0 {
		p.add(join(at, "size"), "%d is not a file size (want the archive's size in bytes, or leave size out when it is unknown)", it.Size)
	}
	if p.required(join(at, "hashes.sha256"), it.SHA256, "the archive's sha256 digest, 64 lowercase hex digits") && !sha256Hex.MatchString(it.SHA256) {
		p.add(join(at, "hashes.sha256"), "%q is not a sha256 digest (want 64 lowercase hex digits)", it.SHA256)
	}
	if p.required(join(at, "glibc"), it.Glibc, `the oldest glibc the interpreter runs on, like "2.17"`) {
		if _, err := wheeltag.ParseGlibc(it.Glibc); err != nil {
			p.add(join(at, "glibc"), "%v", err)
		}
	}
}

// interpreters checks every entry, and that no target has two.
func (p *problems) interpreters(list []Interpreter, targets []wheeltag.Target) {
	seen := map[string]int{}
	for i := range list {
		at := index("interpreter", i)
		p.interpreter(at, &list[i], targets)
		t := list[i].Target
		if j, dup := seen[t]; dup && t != "" {
			p.add(join(at, "target"), "duplicate interpreter for target %q, also interpreter[%d] (pin one interpreter per target)", t, j)
		} else {
			seen[t] = i
		}
	}
}

func (d *decoder) interpreter(path string, v any) Interpreter {
	m := d.table(path, v, interpreterKeys)
	if m == nil {
		return Interpreter{}
	}
	it := Interpreter{
		Target:         d.str(m, path, "target"),
		Implementation: d.str(m, path, "implementation"),
		Version:        d.str(m, path, "version"),
		Release:        d.str(m, path, "release"),
		URL:            d.str(m, path, "url"),
		Size:           d.integer(m, path, "size"),
		Glibc:          d.str(m, path, "glibc"),
	}
	if _, ok := m["size"]; ok && it.Size == 0 && !d.bad[join(path, "size")] {
		d.fail(join(path, "size"), "0 is not a file size (want the archive's size in bytes, or leave size out when it is unknown)")
	}
	if v, ok := m["hashes"]; ok {
		if h := d.table(join(path, "hashes"), v, hashKeys); h != nil {
			it.SHA256 = d.str(h, join(path, "hashes"), "sha256")
		}
	}
	return it
}

// formatInterpreters writes the [[interpreter]] tables, by target.
func (w *writer) interpreters(list []Interpreter) {
	sorted := slices.Clone(list)
	slices.SortStableFunc(sorted, func(a, b Interpreter) int { return strings.Compare(a.Target, b.Target) })
	for _, it := range sorted {
		w.table("[[interpreter]]")
		w.str("target", it.Target)
		w.str("implementation", it.Implementation)
		w.str("version", it.Version)
		w.str("release", it.Release)
		w.str("url", it.URL)
		if it.Size > 0 {
			w.int("size", it.Size)
		}
		w.str("glibc", it.Glibc)
		w.line("hashes = { sha256 = " + quote(it.SHA256) + " }")
	}
}

// String names the build, "CPython 3.13.15 (python-build-standalone 20260814)".
func (it Interpreter) String() string {
	return fmt.Sprintf("CPython %s (python-build-standalone %s)", it.Version, it.Release)
}
