// Package pyenv finds a CPython interpreter that fits a lock's targets and
// creates virtual environments for it in Go, without `python -m venv`.
// Installing wheels into a venv is the job of pyenv/wheel.
package pyenv

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ProbeTimeout bounds one run of a candidate interpreter. A healthy CPython
// answers in well under a second; a hung wrapper script must not stall Find.
const ProbeTimeout = 15 * time.Second

// maxProbeOutput caps what is read from a candidate, which may be any
// executable that happens to be called python3.X.
const maxProbeOutput = 64 << 10

// Want is one interpreter a lock can use: a CPython minor version on an
// architecture.
type Want struct {
	Version string // CPython minor version, e.g. "3.13"
	Arch    string // "x86_64" or "aarch64"; empty matches any
}

var (
	minorRE  = regexp.MustCompile(`^3\.(0|[1-9][0-9]*)$`)
	targetRE = regexp.MustCompile(`^cp3(0|[1-9][0-9]*)-([a-z0-9_]+)$`)
)

// ParseWant reads a lock target such as "cp313-x86_64".
func ParseWant(target string) (Want, error) {
	m := targetRE.FindStringSubmatch(target)
	if m == nil {
		return Want{}, fmt.Errorf("parse target %q: want cp3<minor>-<arch>, like \"cp313-x86_64\"", target)
	}
	return Want{Version: "3." + m[1], Arch: m[2]}, nil
}

func (w Want) String() string {
	if w.Arch == "" {
		return "CPython " + w.Version
	}
	return "CPython " + w.Version + " " + w.Arch
}

// Paths are the interpreter's own sysconfig install paths.
type Paths struct {
	Stdlib, Purelib, Platlib, Scripts, Include, Data string
}

// Interpreter is the identity of one Python executable, as it reports it.
type Interpreter struct {
	Path           string // sys.executable: the path it runs as, not resolved
	RealPath       string // Path with every symlink resolved
	BaseExecutable string // the interpreter outside any venv; equals Path outside a venv
	Implementation string // sys.implementation.name, "cpython"
	Version        string // full version, "3.13.0"
	Minor          string // "3.13"
	Arch           string // "x86_64", "aarch64", "i686", ...
	PointerBits    int    // 64 or 32
	Libc           string // "glibc", or empty for musl and static builds
	Glibc          string // glibc version, "2.36"; empty when Libc is not glibc
	ABIFlags       string // sys.abiflags, "t" for a free-threaded build
	FreeThreaded   bool
	Prefix         string // sys.prefix
	BasePrefix     string // sys.base_prefix; differs from Prefix inside a venv
	PlatLibDir     string // sys.platlibdir, "lib" or "lib64" (Fedora)
	Paths          Paths
}

// ID identifies the interpreter for input-addressed store paths: two
// interpreters with equal IDs build byte-identical venvs.
func (it *Interpreter) ID() string {
	return fmt.Sprintf("%s %s %s abiflags=%q %s", it.Implementation, it.Version, it.Arch, it.ABIFlags, it.RealPath)
}

func (it *Interpreter) String() string {
	s := implName(it.Implementation) + " " + it.Version + " " + it.Arch
	if it.FreeThreaded {
		s += " free-threaded"
	}
	if it.Libc == "glibc" {
		s += " glibc " + it.Glibc
	} else if it.Libc == "" {
		s += " without glibc"
	}
	return s
}

func implName(impl string) string {
	if impl == "cpython" {
		return "CPython"
	}
	return impl
}

// InVenv reports whether the interpreter runs inside a virtual environment.
func (it *Interpreter) InVenv() bool { return it.Prefix != it.BasePrefix }

// mismatch says why it cannot serve w, or "" when it can.
func (it *Interpreter) mismatch(w Want) string {
	switch {
	case it.Implementation != "cpython":
		return "is " + it.Implementation + ", not CPython"
	case it.Minor != w.Version:
		return "is " + it.Minor + ", not " + w.Version
	case w.Arch != "" && it.Arch != w.Arch:
		return "runs on " + it.Arch + ", not " + w.Arch
	case it.FreeThreaded:
		return "is free-threaded; the lock's cp3X wheels need the default build"
	case it.Libc != "glibc":
		return "does not use glibc; manylinux wheels need it"
	}
	return ""
}

// probeScript prints the identity as one JSON object. It stays within the
// Python 3.4 language so that old candidates fail cleanly in the checks
// below rather than with a syntax error. The running glibc comes from
// confstr, as platform.libc_ver() does since 3.8; older versions of
// libc_ver() read the symbol versions the binary was linked against.
const probeScript = `import json, os, platform, struct, sys, sysconfig
p = sysconfig.get_paths()
try:
    libc = tuple(os.confstr("CS_GNU_LIBC_VERSION").split(" ", 1))
    assert len(libc) == 2 and libc[0] == "glibc"
except Exception:
    libc = platform.libc_ver()
json.dump({
  "probe": 1,
  "implementation": sys.implementation.name,
  "version": platform.python_version(),
  "version_info": list(sys.version_info[:3]),
  "machine": platform.machine(),
  "pointer_bits": struct.calcsize("P") * 8,
  "executable": sys.executable,
  "base_executable": getattr(sys, "_base_executable", sys.executable),
  "prefix": sys.prefix,
  "base_prefix": sys.base_prefix,
  "platlibdir": getattr(sys, "platlibdir", "lib"),
  "paths": dict((k, p.get(k, "")) for k in ("stdlib", "purelib", "platlib", "scripts", "include", "data")),
  "abiflags": getattr(sys, "abiflags", ""),
  "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
  "libc": libc[0],
  "libc_version": libc[1],
}, sys.stdout)
`

// identity is what probeScript prints.
type identity struct {
	Probe          int               `json:"probe"`
	Implementation string            `json:"implementation"`
	Version        string            `json:"version"`
	VersionInfo    []int             `json:"version_info"`
	Machine        string            `json:"machine"`
	PointerBits    int               `json:"pointer_bits"`
	Executable     string            `json:"executable"`
	BaseExecutable string            `json:"base_executable"`
	Prefix         string            `json:"prefix"`
	BasePrefix     string            `json:"base_prefix"`
	PlatLibDir     string            `json:"platlibdir"`
	Paths          map[string]string `json:"paths"`
	ABIFlags       string            `json:"abiflags"`
	FreeThreaded   bool              `json:"free_threaded"`
	Libc           string            `json:"libc"`
	LibcVersion    string            `json:"libc_version"`
}

// normArch maps what platform.machine() says to the names wheel tags use.
// A 32-bit interpreter on a 64-bit kernel reports the kernel's machine, so
// the pointer size decides.
func normArch(machine string, bits int) string {
	m := strings.ToLower(machine)
	switch m {
	case "amd64", "x64":
		m = "x86_64"
	case "arm64":
		m = "aarch64"
	}
	if bits == 32 {
		switch m {
		case "x86_64":
			m = "i686"
		case "aarch64":
			m = "armv7l"
		}
	}
	return m
}

func (id *identity) interpreter(ran string) (*Interpreter, error) {
	if id.Probe != 1 || id.Implementation == "" || len(id.VersionInfo) != 3 || id.Version == "" {
		return nil, fmt.Errorf("%w (its answer lacks the probe's fields)", errNotPython3)
	}
	if id.VersionInfo[0] != 3 {
		return nil, fmt.Errorf("version %q is not Python 3: give the path of a python3 (like /usr/bin/python3.13)", id.Version)
	}
	it := &Interpreter{
		Path:           id.Executable,
		BaseExecutable: id.BaseExecutable,
		Implementation: id.Implementation,
		Version:        id.Version,
		Minor:          fmt.Sprintf("%d.%d", id.VersionInfo[0], id.VersionInfo[1]),
		Arch:           normArch(id.Machine, id.PointerBits),
		PointerBits:    id.PointerBits,
		Libc:           id.Libc,
		ABIFlags:       id.ABIFlags,
		FreeThreaded:   id.FreeThreaded,
		Prefix:         id.Prefix,
		BasePrefix:     id.BasePrefix,
		PlatLibDir:     cmp.Or(id.PlatLibDir, "lib"),
		Paths: Paths{
			Stdlib:  id.Paths["stdlib"],
			Purelib: id.Paths["purelib"],
			Platlib: id.Paths["platlib"],
			Scripts: id.Paths["scripts"],
			Include: id.Paths["include"],
			Data:    id.Paths["data"],
		},
	}
	if it.Libc == "glibc" {
		it.Glibc = id.LibcVersion
	}
	// sys.executable is empty when Python cannot tell; it is the run path
	// then. Through a pyenv shim it is the real binary, which is what a
	// venv must point at.
	if !filepath.IsAbs(it.Path) {
		it.Path = ran
	}
	if !filepath.IsAbs(it.BaseExecutable) {
		it.BaseExecutable = it.Path
	}
	real, err := filepath.EvalSymlinks(it.Path)
	if err != nil {
		return nil, fmt.Errorf("resolve sys.executable: %w", err)
	}
	it.RealPath = real
	return it, nil
}

// Prober runs candidate interpreters and remembers their identities in
// memory, keyed by path, resolved path, mtime and size, so that a
// replaced binary is probed again.
type Prober struct {
	mu    sync.Mutex
	cache map[probeKey]*Interpreter
}

type probeKey struct {
	path, real string
	mtime      time.Time
	size       int64
}

// NewProber returns a Prober with an empty cache.
func NewProber() *Prober { return &Prober{cache: map[probeKey]*Interpreter{}} }

// Probe runs the interpreter at path once to read its identity. A path
// without a slash is looked up on $PATH.
func (p *Prober) Probe(ctx context.Context, path string) (*Interpreter, error) {
	it, err := p.probe(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("probe %q: %w", path, err)
	}
	return it, nil
}

func (p *Prober) probe(ctx context.Context, path string) (*Interpreter, error) {
	if !strings.ContainsRune(path, '/') {
		found, err := exec.LookPath(path)
		if err != nil {
			return nil, err
		}
		path = found
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(real)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return nil, fmt.Errorf("not an executable file (mode %v)", fi.Mode())
	}
	key := probeKey{abs, real, fi.ModTime(), fi.Size()}
	p.mu.Lock()
	cached, ok := p.cache[key]
	p.mu.Unlock()
	if ok {
		c := *cached
		return &c, nil
	}

	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	// -I keeps PYTHONPATH, PYTHONHOME and the user's site-packages from
	// changing the answer; site still runs, so a venv reports its prefix.
	cmd := exec.CommandContext(ctx, abs, "-I", "-c", probeScript)
	var stdout, stderr limitedBuffer
	stdout.max, stderr.max = maxProbeOutput, 4<<10
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			err = fmt.Errorf("%w: %s", err, lastLine(msg))
		}
		return nil, fmt.Errorf("%w (%v)", errNotPython3, err)
	}
	if stdout.over {
		return nil, fmt.Errorf("output is larger than %d bytes", maxProbeOutput)
	}
	var id identity
	if err := json.Unmarshal(stdout.Bytes(), &id); err != nil {
		what := fmt.Sprintf("it printed %d bytes that are not the probe's answer", stdout.buf.Len())
		if stdout.buf.Len() == 0 {
			what = "it printed nothing"
		}
		return nil, fmt.Errorf("%w (%s)", errNotPython3, what)
	}
	it, err := id.interpreter(abs)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.cache[key] = it
	p.mu.Unlock()
	c := *it
	return &c, nil
}

// errNotPython3 is a probe that did not get the answer CPython 3 gives.
var errNotPython3 = errors.New("it does not run as a CPython 3 interpreter, which the lock's wheels need: give the path of a python3 (like /usr/bin/python3.13)")

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// limitedBuffer keeps the first max bytes written and notes any excess.
// It does not embed bytes.Buffer, whose ReadFrom would bypass the limit.
type limitedBuffer struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); len(p) > room {
		b.over = true
		b.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *limitedBuffer) Bytes() []byte  { return b.buf.Bytes() }
func (b *limitedBuffer) String() string { return b.buf.String() }

// FindOptions tune Find.
type FindOptions struct {
	// Explicit is the --python PATH; when set, nothing else is searched.
	Explicit string
	// Getenv reads PATH, HOME, PYENV_ROOT, UV_PYTHON_INSTALL_DIR and
	// XDG_DATA_HOME; nil means os.Getenv.
	Getenv func(string) string
	// Prober caches identities across calls; nil means a fresh one.
	Prober *Prober
}

// Candidate is one interpreter Find looked at.
type Candidate struct {
	Path   string
	Interp *Interpreter // nil when the probe failed or was not needed
	Err    error        // why the probe failed
}

// NotFoundError says that no interpreter fits any wanted target. It lists
// what was found and what was needed, and says how to fix it.
type NotFoundError struct {
	Want     []Want
	Explicit string // the --python PATH, if one was given
	Found    []Candidate
}

func (e *NotFoundError) Error() string {
	var b strings.Builder
	needs := make([]string, len(e.Want))
	for i, w := range e.Want {
		needs[i] = w.String()
	}
	need := strings.Join(needs, ", ")
	if e.Explicit != "" {
		fmt.Fprintf(&b, "--python %q does not fit the lock\n  the lock needs one of: %s\n", e.Explicit, need)
	} else {
		fmt.Fprintf(&b, "no Python interpreter fits the lock\n  the lock needs one of: %s\n", need)
	}
	if len(e.Found) == 0 {
		b.WriteString("  found: no python3.X on PATH, in pyenv's versions or in uv's managed Pythons\n")
	} else {
		b.WriteString("  found:\n")
		for _, c := range e.Found {
			switch {
			case c.Err != nil:
				fmt.Fprintf(&b, "    %s: %v\n", c.Path, c.Err)
			case c.Interp != nil:
				fmt.Fprintf(&b, "    %s: %s\n", c.Path, c.Interp)
			}
		}
	}
	// The first wanted version is the lock's preference; suggest it.
	v := "3.13"
	if len(e.Want) > 0 {
		v = e.Want[0].Version
	}
	fmt.Fprintf(&b, "  fix: pass --python PATH to one of those, or install one, e.g. with `uv python install %s`", v)
	return b.String()
}

// Find returns the interpreter that fits the earliest of want. With
// o.Explicit it only checks that path; otherwise it searches python3.X on
// $PATH, then pyenv's versions, then uv's managed Pythons, newest first
// within each place.
func Find(ctx context.Context, want []Want, o FindOptions) (*Interpreter, error) {
	if len(want) == 0 {
		return nil, errors.New("find python: no target given; the lock lists its targets")
	}
	for _, w := range want {
		if !minorRE.MatchString(w.Version) {
			return nil, fmt.Errorf("find python: version %q is not a CPython minor version like \"3.13\"", w.Version)
		}
	}
	p := o.Prober
	if p == nil {
		p = NewProber()
	}
	if o.Explicit != "" {
		it, err := p.Probe(ctx, o.Explicit)
		if err != nil {
			return nil, fmt.Errorf("check --python: %w", err)
		}
		for _, w := range want {
			if it.mismatch(w) == "" {
				return it, nil
			}
		}
		return nil, &NotFoundError{Want: want, Explicit: o.Explicit, Found: []Candidate{{Path: it.Path, Interp: it}}}
	}

	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	cands := discover(getenv)
	probed := make([]bool, len(cands))
	probe := func(i int) error {
		if !probed[i] {
			probed[i] = true
			cands[i].Interp, cands[i].Err = p.probe(ctx, cands[i].Path)
		}
		return ctx.Err()
	}
	// The file name says the minor version; only a name that fits is run
	// while searching, so a match costs few probes.
	for _, w := range want {
		for i, c := range cands {
			if c.name != "python"+w.Version {
				continue
			}
			if err := probe(i); err != nil {
				return nil, fmt.Errorf("find python: %w", err)
			}
			if it := cands[i].Interp; it != nil && it.mismatch(w) == "" {
				return it, nil
			}
		}
	}
	// Probe the rest: the error lists every version found, and a binary
	// whose name lies about its version may still fit.
	for i := range cands {
		if err := probe(i); err != nil {
			return nil, fmt.Errorf("find python: %w", err)
		}
	}
	for _, w := range want {
		for _, c := range cands {
			if c.Interp != nil && c.Interp.mismatch(w) == "" {
				return c.Interp, nil
			}
		}
	}
	e := &NotFoundError{Want: want}
	for _, c := range cands {
		e.Found = append(e.Found, c.Candidate)
	}
	return nil, e
}

type candidate struct {
	Candidate
	name string // file name, "python3.13" or "python3.13t"
}

var interpNameRE = regexp.MustCompile(`^python3\.(0|[1-9][0-9]*)t?$`)

// discover lists python3.X executables in search order, each real file
// once.
func discover(getenv func(string) string) []candidate {
	home := getenv("HOME")
	pyenvRoot := getenv("PYENV_ROOT")
	if pyenvRoot == "" && home != "" {
		pyenvRoot = filepath.Join(home, ".pyenv")
	}
	uvDir := getenv("UV_PYTHON_INSTALL_DIR")
	if uvDir == "" {
		data := getenv("XDG_DATA_HOME")
		if data == "" && home != "" {
			data = filepath.Join(home, ".local", "share")
		}
		if data != "" {
			uvDir = filepath.Join(data, "uv", "python")
		}
	}

	var dirs []string
	for _, d := range filepath.SplitList(getenv("PATH")) {
		// An empty entry means the working directory: never run what
		// happens to lie there. pyenv's shims pick a version by the
		// working directory and $PYENV_VERSION, so their identity is not
		// stable; the versions they lead to are searched directly.
		if d == "" || !filepath.IsAbs(d) || (pyenvRoot != "" && filepath.Clean(d) == filepath.Join(pyenvRoot, "shims")) {
			continue
		}
		dirs = append(dirs, d)
	}
	if pyenvRoot != "" {
		dirs = append(dirs, newestFirst(filepath.Join(pyenvRoot, "versions"), "*")...)
	}
	if uvDir != "" {
		dirs = append(dirs, newestFirst(uvDir, "cpython-3.*-linux-*")...)
	}

	var out []candidate
	seen := map[string]bool{}
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		// Newer minors first within a directory, so an error lists them
		// in a useful order.
		names := []string{}
		for _, e := range ents {
			if interpNameRE.MatchString(e.Name()) {
				names = append(names, e.Name())
			}
		}
		slices.SortFunc(names, func(a, b string) int { return compareVersions(b, a) })
		for _, n := range names {
			path := filepath.Join(d, n)
			real, err := filepath.EvalSymlinks(path)
			if err != nil || seen[real] {
				continue
			}
			fi, err := os.Stat(real)
			if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
				continue
			}
			seen[real] = true
			out = append(out, candidate{Candidate: Candidate{Path: path}, name: n})
		}
	}
	return out
}

// newestFirst returns the bin directories of the entries of dir matching
// pattern, highest version first.
func newestFirst(dir, pattern string) []string {
	matches, _ := filepath.Glob(filepath.Join(dir, pattern))
	slices.SortFunc(matches, func(a, b string) int {
		return compareVersions(filepath.Base(b), filepath.Base(a))
	})
	bins := make([]string, 0, len(matches))
	for _, m := range matches {
		if fi, err := os.Stat(filepath.Join(m, "bin")); err == nil && fi.IsDir() {
			bins = append(bins, filepath.Join(m, "bin"))
		}
	}
	return bins
}

var numRE = regexp.MustCompile(`[0-9]+`)

// compareVersions orders names like "3.13.10" and "cpython-3.9.1-linux"
// by the numbers in them, so that 3.13.10 sorts after 3.13.9.
func compareVersions(a, b string) int {
	na, nb := numRE.FindAllString(a, -1), numRE.FindAllString(b, -1)
	for i := 0; i < len(na) && i < len(nb); i++ {
		x, _ := strconv.Atoi(na[i])
		y, _ := strconv.Atoi(nb[i])
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(len(na), len(nb)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}
