package standalone

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/bitpoll-install/bitpoll-install/fetch"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/progress"
	"github.com/bitpoll-install/bitpoll-install/pyenv"
	"github.com/bitpoll-install/bitpoll-install/pyspec/wheeltag"
	"github.com/bitpoll-install/bitpoll-install/safearchive"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// StoreName is the name part of an interpreter's store path:
// <store>/<key>-cpython-<version>-<release>.
const StoreName = "cpython"

// TopDir is the one top directory of an install_only archive; it stays
// the top directory of the store path, so the interpreter is
// <store path>/python/bin/python3.X.
const TopDir = "python"

// ErrBadArchive labels an archive refused for what it holds: a member
// that would land outside the tree, a link out of it, a special file.
var ErrBadArchive = errors.New("unsafe interpreter archive")

// Options are what Ensure needs besides the entry.
type Options struct {
	// Store is where the interpreter goes; the caller holds its lock.
	Store *store.Store
	// CacheDir holds the download cache shared with the wheels.
	CacheDir   string
	HTTPClient *http.Client // nil: the default client (system roots, SSL_CERT_FILE)
	Unpack     safearchive.Limits
	Progress   progress.Reporter
	// HostGlibc returns the host's glibc version ("2.36"); nil asks
	// getconf. An error means it is not known, and the interpreter's
	// own first run decides.
	HostGlibc func(ctx context.Context) (string, error)
	// Arch is the host's architecture as wheel tags spell it; empty
	// means this process's.
	Arch string
}

// Installed is an interpreter in the store.
type Installed struct {
	Entry  lockfile.Interpreter
	Path   string // the store path
	Python string // its python3.X
	Built  bool   // false when the store had it
}

// HostArch is the architecture this program runs on, as wheel tags
// spell it.
func HostArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return runtime.GOARCH
}

// StoreKey is the input address of e's store path: the archive's sha256
// decides its content, the rest names it.
func StoreKey(e lockfile.Interpreter) string {
	return store.Key("python-build-standalone", e.Implementation, e.Version, e.Release, e.SHA256)
}

// Path is where e lives in st, whether or not it is there yet.
func Path(st *store.Store, e lockfile.Interpreter) string {
	return st.Path(StoreKey(e), StoreName, e.Version+"-"+e.Release)
}

// Python is the interpreter inside a store path of e.
func Python(storePath string, e lockfile.Interpreter) string {
	return filepath.Join(storePath, TopDir, "bin", "python"+e.Minor())
}

// CheckHost refuses e on a host it cannot run on: another architecture,
// or a glibc older than it needs. It runs before anything is fetched.
func CheckHost(ctx context.Context, e lockfile.Interpreter, o Options) error {
	arch := o.Arch
	if arch == "" {
		arch = HostArch()
	}
	_, tArch, _ := strings.Cut(e.Target, "-")
	if tArch != arch {
		return fmt.Errorf("the lock's interpreter for %s is built for %s, and this host is %s: re-lock with --target for %s", e.Target, tArch, arch, arch)
	}
	need, err := wheeltag.ParseGlibc(e.Glibc)
	if err != nil {
		return fmt.Errorf("the lock's interpreter for %s: glibc %q: %w", e.Target, e.Glibc, err)
	}
	hostGlibc := o.HostGlibc
	if hostGlibc == nil {
		hostGlibc = GetconfGlibc
	}
	v, err := hostGlibc(ctx)
	if err != nil {
		return nil // unknown: the probe after unpacking tells
	}
	have, err := wheeltag.ParseGlibc(v)
	if err != nil {
		return nil
	}
	if have.Major < need.Major || have.Major == need.Major && have.Minor < need.Minor {
		return fmt.Errorf("%s needs glibc %s or newer, and this host has glibc %s: use a newer system, or pin an interpreter built for an older glibc", e, e.Glibc, v)
	}
	return nil
}

// GetconfGlibc asks getconf for the running glibc's version.
func GetconfGlibc(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "getconf", "GNU_LIBC_VERSION").Output()
	if err != nil {
		return "", fmt.Errorf("getconf GNU_LIBC_VERSION: %w", err)
	}
	name, v, ok := strings.Cut(strings.TrimSpace(string(out)), " ")
	if !ok || name != "glibc" {
		return "", fmt.Errorf("getconf GNU_LIBC_VERSION said %q, not glibc", out)
	}
	return v, nil
}

// Ensure makes sure the store holds e's interpreter and returns it. The
// archive comes through the download cache (size, when the lock knows
// it, and sha256 checked); it is unpacked with safearchive into the
// store's .partial directory, its interpreter is run once to check that
// it is the build the entry names, and only then is the tree sealed and
// renamed into place. A refused archive leaves nothing in the store.
func Ensure(ctx context.Context, e lockfile.Interpreter, o Options) (*Installed, error) {
	if err := CheckHost(ctx, e, o); err != nil {
		return nil, err
	}
	if o.Progress == nil {
		o.Progress = progress.Nop{}
	}
	final := Path(o.Store, e)
	path, built, err := o.Store.Build(ctx, StoreKey(e), StoreName, e.Version+"-"+e.Release, func(dir string) error {
		return build(ctx, e, o, dir, final)
	})
	if err != nil {
		return nil, fmt.Errorf("install %s: %w", e, err)
	}
	return &Installed{Entry: e, Path: path, Python: Python(path, e), Built: built}, nil
}

func build(ctx context.Context, e lockfile.Interpreter, o Options, dir, final string) error {
	size := e.Size
	if size == 0 {
		size = -1 // unknown: the hash alone decides
	}
	name := archiveName(e.URL)
	d := &fetch.Downloader{CacheDir: o.CacheDir, HTTPClient: o.HTTPClient, Progress: o.Progress}
	paths, err := d.Fetch(ctx, []fetch.Artifact{{Name: name, URL: e.URL, Size: size, SHA256: e.SHA256}})
	if err != nil {
		return err
	}
	archive := paths[e.SHA256]
	o.Progress.Log(fmt.Sprintf("unpacking %s", e))
	// dir is empty; the archive's python/ lands in it.
	policy := safearchive.Policy{Limits: o.Unpack, Label: ErrBadArchive, Symlinks: true, Hardlinks: true, DotSlash: true, OneTop: true}
	if err := safearchive.Extract(archive, dir, policy); err != nil {
		return fmt.Errorf("unpack %s: %w", name, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(entries) != 1 || entries[0].Name() != TopDir || !entries[0].IsDir() {
		return fmt.Errorf("unpack %s: %w: want one top directory %q, as python-build-standalone's install_only archives have", name, ErrBadArchive, TopDir+"/")
	}
	python := Python(dir, e)
	if info, err := os.Stat(python); err != nil || !info.Mode().IsRegular() {
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			err = errors.New("no such file")
		}
		return fmt.Errorf("unpack %s: %w: want the interpreter at %s: %v", name, ErrBadArchive, filepath.Join(TopDir, "bin", "python"+e.Minor()), err)
	}
	it, err := pyenv.NewProber().Probe(ctx, python)
	if err != nil {
		return fmt.Errorf("run the interpreter of %s: %w", name, err)
	}
	_, arch, _ := strings.Cut(e.Target, "-")
	if it.Implementation != e.Implementation || it.Version != e.Version || it.Arch != arch {
		return fmt.Errorf("%s holds %s, not the %s %s for %s the lock names: re-lock, or check where the lock's URL points", name, it, e.Implementation, e.Version, arch)
	}
	o.Progress.Log(fmt.Sprintf("compiling the standard library of %s", e))
	return compileStdlib(ctx, python, filepath.Join(dir, TopDir, "lib"), filepath.Join(final, TopDir, "lib"))
}

// stdlibSkip are the standard library's files that are not meant to
// compile (test data with bad syntax or encodings) and the test suites,
// which a server never imports; CPython's own install skips the same.
const stdlibSkip = `(^|/)(test|tests|idle_test)/|bad_coding|badsyntax|site-packages`

// compileStdlib writes bytecode for every module under lib, as the
// store path will have it (final), before the tree is sealed. The
// archive's own bytecode checks source mtimes, which unpacking does not
// keep, so without this every run would compile the standard library
// again, and a run as root would write into the sealed store path. The
// pycs are unchecked-hash: no mtime is involved, and the bytes depend
// only on the sources.
func compileStdlib(ctx context.Context, python, lib, final string) error {
	cmd := exec.CommandContext(ctx, python, "-I", "-m", "compileall", "-q", "-f", "-j", "0",
		"--invalidation-mode", "unchecked-hash", "-s", lib, "-p", final, "-x", stdlibSkip, lib)
	cmd.Env = pythonEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("compile the standard library's bytecode: %w\n%s", err, lastLines(out, 20))
	}
	return nil
}

// pythonEnv is the environment without the variables that change what
// Python imports or where it writes.
func pythonEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PYTHON") || k == "VIRTUAL_ENV" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
