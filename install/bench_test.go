package install

import (
	"bufio"
	"context"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/pyenv"
	"github.com/bitpoll-install/bitpoll-install/pyspec/pep508"
	"github.com/bitpoll-install/bitpoll-install/resolve"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// BenchmarkInstall installs one lock (the fixture app plus the default
// extras: gunicorn, whitenoise, psycopg[binary]) with bitpoll-install, uv
// and pip in the same run, each as a child process so that all are timed
// and measured alike. "cold" starts from an empty cache, "warm" from a
// full one with a new venv (and, for bitpoll-install, a new store path).
//
// Metrics besides ns/op: peak-MB is the largest resident set of the
// child or of any process it waited for (wait4's ru_maxrss, read by a
// small launcher whose own 8 MB or so is the floor: see launcher), and
// venv-ms is the time bitpoll-install takes until its venv is complete
// with bytecode: the job uv and pip are timed for, before collectstatic,
// compilemessages and the store's sealing and switching. uv is asked to
// compile bytecode, as pip and bitpoll-install do.
func BenchmarkInstall(b *testing.B) {
	benchInstalls(b, newBenchEnv(b, func(it *pyenv.Interpreter) (*lockfile.Lock, string) {
		return benchLock(b, it), testkit.FixtureApp()
	}))
}

// BenchmarkInstallBitpoll is BenchmarkInstall on real Bitpoll 0.11.0 and
// its 43 wheels, where BITPOLL_MIRROR names a mirror of its repository.
func BenchmarkInstallBitpoll(b *testing.B) {
	mirror := testkit.BitpollMirror(b)
	benchInstalls(b, newBenchEnv(b, func(it *pyenv.Interpreter) (*lockfile.Lock, string) {
		ctx := context.Background()
		dir := testkit.ExportRelease(ctx, b, mirror, "0.11.0")
		return testkit.LockTree(ctx, b, testkit.RealIndex(b), dir, "0.11.0", testkit.Target(it)), dir
	}))
}

// benchInstalls runs the sub-benchmarks of e's lock.
func benchInstalls(b *testing.B, e *benchEnv) {
	b.Run("bitpoll-install/cold", func(b *testing.B) {
		var peak, phase float64
		for i := 0; i < b.N; i++ {
			root := e.scratch(b)
			r := e.install(b, root)
			peak, phase = max(peak, r.peakMB), phase+r.phaseMS
		}
		b.ReportMetric(peak, "peak-MB")
		b.ReportMetric(phase/float64(b.N), "venv-ms/op")
	})

	b.Run("bitpoll-install/warm", func(b *testing.B) {
		b.StopTimer()
		warm := e.scratch(b)
		e.install(b, warm)
		cache := store.Layout{Root: warm}.CacheDir()
		b.StartTimer()
		var peak, phase float64
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			root := e.scratch(b)
			link := store.Layout{Root: root}.CacheDir()
			if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.Symlink(cache, link); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			r := e.install(b, root)
			peak, phase = max(peak, r.peakMB), phase+r.phaseMS
		}
		b.ReportMetric(peak, "peak-MB")
		b.ReportMetric(phase/float64(b.N), "venv-ms/op")
	})

	b.Run("uv/cold", func(b *testing.B) {
		e.needUV(b)
		var peak float64
		for i := 0; i < b.N; i++ {
			dir := e.scratch(b)
			peak = max(peak, e.uvInstall(b, dir, "--no-cache"))
		}
		b.ReportMetric(peak, "peak-MB")
	})

	b.Run("uv/warm", func(b *testing.B) {
		e.needUV(b)
		b.StopTimer()
		cache := e.scratch(b)
		warm := e.scratch(b)
		e.uvInstall(b, warm, "--cache-dir", cache)
		b.StartTimer()
		var peak float64
		for i := 0; i < b.N; i++ {
			dir := e.scratch(b)
			peak = max(peak, e.uvInstall(b, dir, "--cache-dir", cache))
		}
		b.ReportMetric(peak, "peak-MB")
	})

	b.Run("pip/cold", func(b *testing.B) {
		var peak float64
		for i := 0; i < b.N; i++ {
			dir := e.scratch(b)
			venv := filepath.Join(dir, "venv")
			peak = max(peak, e.run(b, nil, e.python.Path, "-m", "venv", venv).peakMB)
			peak = max(peak, e.run(b, nil, filepath.Join(venv, "bin", "python"), "-m", "pip", "install", "--quiet",
				"--disable-pip-version-check", "--require-hashes", "--no-cache-dir", "--only-binary", ":all:", "-r", e.requirements).peakMB)
		}
		b.ReportMetric(peak, "peak-MB")
	})
}

// benchEnv is what every sub-benchmark shares: one lock, written as a
// bitpoll.lock and as a hashed requirements file, one interpreter and the
// CLI binary.
type benchEnv struct {
	python       *pyenv.Interpreter
	cli          string
	lock         string // the bitpoll.lock file
	appSource    string // the app tree the lock pins
	requirements string // name==version --hash=sha256:... for the same files
	tmp          string
}

// newBenchEnv builds the CLI and writes the lock that lockFor makes for
// the host's Python, with the app tree it pins, as a bitpoll.lock and as
// a requirements file.
func newBenchEnv(b *testing.B, lockFor func(*pyenv.Interpreter) (*lockfile.Lock, string)) *benchEnv {
	testkit.NeedNetwork(b)
	goTool, err := exec.LookPath("go")
	if err != nil {
		testenv.Skip(b, "the go command is not on PATH: it builds the CLI the benchmark runs")
	}
	python := testkit.HostPython(b)
	e := &benchEnv{python: python, tmp: b.TempDir()}
	b.Cleanup(func() { makeWritable(e.tmp) }) // runs before TempDir's own cleanup

	e.cli = filepath.Join(e.tmp, "bitpoll-install")
	if out, err := exec.Command(goTool, "build", "-o", e.cli, "github.com/bitpoll-install/bitpoll-install/cmd/bitpoll-install").CombinedOutput(); err != nil {
		b.Fatalf("build the CLI: %v\n%s", err, out)
	}

	l, app := lockFor(python)
	e.appSource = app
	e.lock = filepath.Join(e.tmp, "bitpoll.lock")
	if err := lockfile.WriteFile(e.lock, l); err != nil {
		b.Fatal(err)
	}
	e.requirements = writeRequirements(b, e.tmp, l, func(s lockfile.Selected) string {
		return s.Package.Name + "==" + s.Package.Version + " --hash=sha256:" + s.File.SHA256
	})
	return e
}

// writeRequirements writes a hash-pinned requirements.txt into dir for
// the peers, a line per package the lock's first target installs, as
// line spells it, and returns its path.
func writeRequirements(b *testing.B, dir string, l *lockfile.Lock, line func(lockfile.Selected) string) string {
	b.Helper()
	targets, err := l.ParsedTargets()
	if err != nil {
		b.Fatal(err)
	}
	sel, err := l.ForTarget(targets[0])
	if err != nil {
		b.Fatal(err)
	}
	var lines []string
	for _, s := range sel {
		lines = append(lines, line(s))
	}
	path := filepath.Join(dir, "requirements.txt")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// benchLock locks the fixture app with resolve.DefaultExtra, leaving out
// the extras the app already pins.
func benchLock(b *testing.B, it *pyenv.Interpreter) *lockfile.Lock {
	b.Helper()
	reqs, err := resolve.ReadRequirements(testkit.FixtureApp(), "requirements.txt")
	if err != nil {
		b.Fatal(err)
	}
	var extra []string
	for _, s := range resolve.DefaultExtra {
		r, err := pep508.ParseRequirement(s)
		if err != nil {
			b.Fatal(err)
		}
		if !slices.ContainsFunc(reqs, func(q resolve.Requirement) bool { return q.Name == r.Name }) {
			extra = append(extra, s)
		}
	}
	return testkit.LockFixture(b, testkit.Target(it), extra...)
}

func (e *benchEnv) needUV(b *testing.B) {
	if _, err := exec.LookPath("uv"); err != nil {
		testenv.Skip(b, "uv is not on PATH: install uv to compare with it")
	}
}

// scratch is a new empty directory, kept until the benchmark ends (see
// makeWritable).
func (e *benchEnv) scratch(b *testing.B) string {
	dir, err := os.MkdirTemp(e.tmp, "run-")
	if err != nil {
		b.Fatal(err)
	}
	return dir
}

// makeWritable lets the test's temporary directory be removed: store
// paths are sealed read-only.
//
// Nothing is removed before the benchmark ends. ext4 without a journal
// passes over inodes freed in the last minute when it allocates new ones,
// so a tree of 12,000 files removed just before a run made that run's
// file creation scan the freed inodes first: a third of the installer's
// CPU went to the kernel's recently_deleted check. A first install on a
// server does not follow such a removal, and the peers' numbers were
// skewed by it as much as ours.
func makeWritable(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
}

type childRun struct {
	peakMB  float64
	phaseMS float64
}

// launcher runs argv[2:] and writes its ru_maxrss (KiB) to argv[1]. The
// child is not started from the test process directly because Linux
// carries the resident high-water mark of the process that calls exec
// into the new program's ru_maxrss: the test binary's own size would be
// the floor of every measurement. A bare Python (-I -S) is a small floor.
const launcher = `import os, sys
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, ru = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(ru.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
`

// run runs a child process and returns its peak memory; each line it
// writes to stderr goes to onLine as it arrives.
func (e *benchEnv) run(b *testing.B, onLine func(string), name string, args ...string) childRun {
	b.Helper()
	rss, err := os.CreateTemp(e.tmp, "maxrss-")
	if err != nil {
		b.Fatal(err)
	}
	rss.Close()
	defer os.Remove(rss.Name())
	cmd := exec.Command(e.python.Path, append([]string{"-I", "-S", "-c", launcher, rss.Name(), name}, args...)...)
	cmd.Env = cleanEnv()
	var out, errOut strings.Builder
	cmd.Stdout = &out
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	tee := io.TeeReader(stderr, &errOut)
	sc := bufio.NewScanner(tee)
	for sc.Scan() {
		if onLine != nil {
			onLine(sc.Text())
		}
	}
	_, _ = io.Copy(io.Discard, tee) // after an overlong line, so the child never blocks
	if err := cmd.Wait(); err != nil {
		b.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail([]byte(out.String()+errOut.String())))
	}
	data, err := os.ReadFile(rss.Name())
	if err != nil {
		b.Fatal(err)
	}
	kib, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		b.Fatalf("read the peak memory of %s: %v", name, err)
	}
	return childRun{peakMB: float64(kib) / 1024}
}

// install runs `bitpoll-install install` into root and times, from its
// start, the moment its progress lines on stderr say the venv is complete.
func (e *benchEnv) install(b *testing.B, root string) childRun {
	b.Helper()
	var venv time.Time
	start := time.Now()
	r := e.run(b, func(line string) {
		if strings.HasPrefix(line, "the venv is complete") {
			venv = time.Now()
		}
	}, e.cli, "--root", root, "install", "--lock", e.lock, "--app-source", e.appSource, "--python", e.python.Path)
	if venv.IsZero() {
		b.Fatal(`bitpoll-install printed no "the venv is complete ..." line: the venv cannot be timed`)
	}
	r.phaseMS = float64(venv.Sub(start).Microseconds()) / 1000
	return r
}

// uvInstall makes a venv in dir and installs the hashed requirements with
// uv; cache is uv's cache flag(s). It returns the peak memory of both steps.
func (e *benchEnv) uvInstall(b *testing.B, dir string, cache ...string) float64 {
	b.Helper()
	venv := filepath.Join(dir, "venv")
	args := append([]string{"venv", "--quiet", "--python", e.python.Path}, cache...)
	peak := e.run(b, nil, "uv", append(args, venv)...).peakMB
	args = append([]string{"pip", "install", "--quiet", "--require-hashes", "--compile-bytecode", "--python", filepath.Join(venv, "bin", "python")}, cache...)
	return max(peak, e.run(b, nil, "uv", append(args, "-r", e.requirements)...).peakMB)
}
