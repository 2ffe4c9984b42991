// Package build turns an sdist into a wheel, as a PEP 517 front end: it
// unpacks the sdist safely, installs the given build requirements into an
// isolated venv, and calls the backend's hooks through the interpreter with
// the network cut off. Built wheels are cached under the sdist's hash and
// the target, so each sdist is built once. Installing the wheel is the job
// of pyenv/wheel; choosing the build requirements is the lock's.
package build

import (
	"cmp"
	"github.com/bitpoll-install/bitpoll-install/safearchive"

	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bitpoll-install/bitpoll-install/pyenv"
	"github.com/bitpoll-install/bitpoll-install/pyenv/wheel"
	"github.com/bitpoll-install/bitpoll-install/pyspec/pep440"
	"github.com/bitpoll-install/bitpoll-install/pyspec/pep508"
	"github.com/bitpoll-install/bitpoll-install/pyspec/wheeltag"
)

// DefaultTimeout bounds one build when Options.Timeout is zero.
const DefaultTimeout = 30 * time.Minute

// CacheLayout names the folder of built wheels inside the cache; it
// changes when the layout does.
const CacheLayout = "built-v1"

// installerName is written to INSTALLER in the build venv.
const installerName = "bitpoll-install"

// Options controls one build.
type Options struct {
	// Interp runs the backend; it must fit Target.
	Interp *pyenv.Interpreter
	// BuildWheels are paths of verified wheels of the locked build
	// requirements. They are all the build venv holds.
	BuildWheels []string
	// CacheDir holds built wheels at
	// <CacheDir>/built-v1/<sdist sha256>-<Target>/<wheel>.
	CacheDir string
	// Target is the lock target the wheel is for, like "cp313-x86_64".
	Target string
	// Timeout bounds the backend's hooks; DefaultTimeout if zero.
	Timeout time.Duration
	// Limits bound what the sdist may unpack to; zero means
	// safearchive's defaults.
	Limits safearchive.Limits
	// OSRelease is the os-release file that names the host's
	// distribution, for the packages a failed build lacks; empty means
	// /etc/os-release.
	OSRelease string
}

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// BuildWheel returns the path of a wheel built from the sdist at
// sdistPath, whose content must hash to sdistSHA256 (lowercase hex). A
// wheel cached by an earlier call is returned without building. Otherwise
// the wheel is built aside and renamed into the cache, so the cache never
// holds a partial entry.
func BuildWheel(ctx context.Context, sdistPath, sdistSHA256 string, o Options) (wheelPath string, err error) {
	wheelPath, err = buildWheel(ctx, sdistPath, sdistSHA256, o)
	if err != nil {
		return "", fmt.Errorf("build wheel from %q: %w", filepath.Base(sdistPath), err)
	}
	return wheelPath, nil
}

func buildWheel(ctx context.Context, sdistPath, sum string, o Options) (string, error) {
	if !sha256RE.MatchString(sum) {
		return "", fmt.Errorf("sdist hash %q is not 64 lowercase hex digits of a sha256", sum)
	}
	if o.CacheDir == "" {
		return "", errors.New("no cache directory given; set Options.CacheDir")
	}
	if o.Interp == nil {
		return "", errors.New("no interpreter given; set Options.Interp")
	}
	target, err := checkTarget(o.Target, o.Interp)
	if err != nil {
		return "", err
	}
	entry := filepath.Join(o.CacheDir, CacheLayout, sum+"-"+o.Target)
	if whl, err := cached(entry); err == nil {
		return whl, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := checkHash(sdistPath, sum); err != nil {
		return "", err
	}

	parent := filepath.Dir(entry)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	work, err := os.MkdirTemp(parent, ".build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)

	out, err := build(ctx, sdistPath, work, target, o)
	if err != nil {
		return "", err
	}
	if err := os.Chmod(out, 0o755); err != nil {
		return "", err
	}
	// A concurrent build of the same sdist may have won; its wheel is as
	// good as this one.
	if err := os.Rename(out, entry); err != nil {
		if whl, cerr := cached(entry); cerr == nil {
			return whl, nil
		}
		return "", fmt.Errorf("store built wheel: %w", err)
	}
	return cached(entry)
}

// checkTarget parses the target and checks that it fits the interpreter.
func checkTarget(target string, it *pyenv.Interpreter) (wheeltag.Target, error) {
	w, err := pyenv.ParseWant(target)
	if err != nil {
		return wheeltag.Target{}, err
	}
	if w.Version != it.Minor || w.Arch != it.Arch {
		return wheeltag.Target{}, fmt.Errorf("target %q needs CPython %s on %s, but the interpreter %q is %s on %s; pass an interpreter that fits",
			target, w.Version, w.Arch, it.Path, it.Minor, it.Arch)
	}
	g, err := wheeltag.ParseGlibc(it.Glibc)
	if err != nil {
		return wheeltag.Target{}, fmt.Errorf("interpreter %q: %w", it.Path, err)
	}
	return wheeltag.ParseTarget(target, g)
}

// cached returns the wheel in a cache entry, or an fs.ErrNotExist error
// when there is no entry.
func cached(entry string) (string, error) {
	ents, err := os.ReadDir(entry)
	if err != nil {
		return "", err
	}
	if len(ents) != 1 || !ents[0].Type().IsRegular() || !strings.HasSuffix(ents[0].Name(), ".whl") {
		return "", fmt.Errorf("cache entry %q does not hold exactly one wheel; remove it to build again", entry)
	}
	return filepath.Join(entry, ents[0].Name()), nil
}

// checkHash verifies the sdist's content against the hash it is cached
// under.
func checkHash(path, want string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("hash sdist: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("sdist has sha256 %q, want %q: the file is corrupt or not the locked one; delete it and download it again", got, want)
	}
	return nil
}

// build unpacks the sdist, builds its wheel in work and returns a new
// directory holding only the wheel.
func build(ctx context.Context, sdistPath, work string, target wheeltag.Target, o Options) (string, error) {
	srcRoot := filepath.Join(work, "src")
	if err := os.Mkdir(srcRoot, 0o755); err != nil {
		return "", err
	}
	src, err := unpackSdist(sdistPath, srcRoot, o.Limits)
	if err != nil {
		return "", fmt.Errorf("unpack sdist: %w", err)
	}
	name, version, err := sdistIdentity(src)
	if err != nil {
		return "", err
	}
	be, err := readBackend(src)
	if err != nil {
		return "", err
	}
	venv, installed, err := buildVenv(filepath.Join(work, "venv"), o)
	if err != nil {
		return "", err
	}
	hooks := filepath.Join(work, "hooks")
	for _, d := range []string{hooks, filepath.Join(hooks, "home"), filepath.Join(hooks, "tmp")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return "", err
		}
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := &hookRunner{
		python:    venv.Python,
		venv:      venv.Dir,
		src:       src,
		work:      hooks,
		backend:   be,
		wrap:      netnsPrefix(ctx),
		osRelease: cmp.Or(o.OSRelease, "/etc/os-release"),
	}
	var requires []string
	if _, err := r.call(ctx, "get_requires_for_build_wheel", map[string]any{}, &requires); err != nil {
		return "", err
	}
	if err := satisfied(requires, installed, o.Interp, target); err != nil {
		return "", err
	}
	out := filepath.Join(work, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		return "", err
	}
	var base string
	ok, err := r.call(ctx, "build_wheel", map[string]any{"wheel_directory": out}, &base)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("backend %q has no build_wheel hook; it is not a PEP 517 backend", be.Spec)
	}
	if err := checkOutput(out, base, name, version, target); err != nil {
		return "", err
	}
	return out, nil
}

// buildVenv creates the isolated build venv and installs the build wheels
// into it, returning the installed versions by normalised name.
func buildVenv(dir string, o Options) (*pyenv.Venv, map[string]string, error) {
	venv, err := pyenv.CreateVenv(dir, o.Interp)
	if err != nil {
		return nil, nil, err
	}
	installed := map[string]string{}
	for _, w := range o.BuildWheels {
		fn, err := wheeltag.ParseFilename(filepath.Base(w))
		if err != nil {
			return nil, nil, fmt.Errorf("build requirement: %w", err)
		}
		s := wheel.Scheme(venv.Scheme)
		s.Headers = filepath.Join(s.Headers, fn.Name)
		res, err := wheel.Install(w, s, wheel.Options{Python: venv.Python, Installer: installerName})
		if err != nil {
			return nil, nil, fmt.Errorf("set up build venv: %w", err)
		}
		installed[wheeltag.NormalizeName(res.Name)] = res.Version
	}
	return venv, installed, nil
}

// satisfied checks the backend's extra build requirements against the
// installed build wheels. Nothing is fetched: a requirement they do not
// meet must be added to the lock. Extras are not followed; their
// dependencies are checked when the backend imports them.
func satisfied(requires []string, installed map[string]string, it *pyenv.Interpreter, target wheeltag.Target) error {
	env := pep508.LinuxCPython(target.Minor, target.Arch)
	env["python_full_version"] = it.Version
	env["implementation_version"] = it.Version
	var missing []string
	for _, s := range requires {
		req, err := pep508.ParseRequirement(s)
		if err != nil {
			return fmt.Errorf("backend asks for build requirement %q: %w", s, err)
		}
		if req.Marker != nil && !req.Marker.Evaluate(env, nil) {
			continue
		}
		have, ok := installed[req.Name]
		if !ok {
			missing = append(missing, fmt.Sprintf("%q (not among the build wheels)", s))
			continue
		}
		v, err := pep440.Parse(have)
		if err != nil || req.URL != "" || !req.Specifiers.Contains(v, true) {
			missing = append(missing, fmt.Sprintf("%q (the build wheels have %s %s)", s, req.Name, have))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("backend needs build requirements the lock does not provide: %s; add them to the lock's build-requires for this package",
			strings.Join(missing, ", "))
	}
	return nil
}

// checkOutput checks that out holds exactly the wheel the backend named,
// for the sdist's project and version, installable on target.
func checkOutput(out, base, name, version string, target wheeltag.Target) error {
	ents, err := os.ReadDir(out)
	if err != nil {
		return err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	if base == "" || filepath.Base(base) != base || len(ents) != 1 || names[0] != base || !ents[0].Type().IsRegular() {
		return fmt.Errorf("backend returned wheel %q but wrote %s; want exactly that one file", base, strconv.Quote(strings.Join(names, ", ")))
	}
	fn, err := wheeltag.ParseFilename(base)
	if err != nil {
		return fmt.Errorf("backend built %w", err)
	}
	if fn.Name != wheeltag.NormalizeName(name) {
		return fmt.Errorf("built wheel %q is for project %q, want %q as the sdist says", base, fn.Name, wheeltag.NormalizeName(name))
	}
	gv, err1 := pep440.Parse(fn.Version)
	wv, err2 := pep440.Parse(version)
	if err1 != nil || err2 != nil || gv.Compare(wv) != 0 {
		return fmt.Errorf("built wheel %q has version %q, want %q as the sdist says", base, fn.Version, version)
	}
	if !compatible(fn, target) {
		return fmt.Errorf("built wheel %q does not run on %s: its tags fit no CPython %s on %s", base, target, target.PythonVersion(), target.Arch)
	}
	return nil
}

// compatible reports whether one of the wheel's tags fits the target. A
// local build is tagged linux_<arch> rather than manylinux, which is right
// for the machine that built it.
func compatible(fn wheeltag.Filename, target wheeltag.Target) bool {
	if _, ok := target.Rank(fn); ok {
		return true
	}
	type pyABI struct{ py, abi string }
	fits := map[pyABI]bool{}
	for _, t := range target.Tags() {
		fits[pyABI{t.Python, t.ABI}] = true
	}
	return slices.ContainsFunc(fn.Tags, func(t wheeltag.Tag) bool {
		return t.Platform == "linux_"+target.Arch && fits[pyABI{t.Python, t.ABI}]
	})
}
