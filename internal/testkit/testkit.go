// Package testkit holds what the end-to-end tests of several packages
// share: the fixture project, locks of it and of real Bitpoll from a
// mirror (made by the CLI's lock against real PyPI, as a user makes
// them), the CLI built from source, and a browser-like poll creation. It
// is imported only by tests, and reaches the resolver only through the
// CLI.
package testkit

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/fetch"
	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/pyenv"
)

// ExcludeNewer is the cut-off every test lock uses, so that the locks are
// the same from one day to the next.
var ExcludeNewer = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

// RepoRoot is the module's root directory, found from this file's path so
// that tests in any package agree on it.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// FixtureApp is our own small Django project laid out like Bitpoll: it
// imports settings_local, has a migration, static files and a locale.
func FixtureApp() string { return filepath.Join(RepoRoot(), "testdata", "fixtureapp") }

// NeedNetwork skips tb under -short, with BITPOLL_OFFLINE set, or when
// PyPI does not answer.
func NeedNetwork(tb testing.TB) {
	tb.Helper()
	testenv.NeedPyPI(tb, "installs real PyPI wheels")
}

// HostPython finds any CPython 3.11 to 3.14 on this machine, or skips.
func HostPython(tb testing.TB) *pyenv.Interpreter {
	tb.Helper()
	var wants []pyenv.Want
	for _, v := range []string{"3.13", "3.12", "3.11", "3.14"} {
		wants = append(wants, pyenv.Want{Version: v})
	}
	it, err := pyenv.Find(context.Background(), wants, pyenv.FindOptions{})
	if err != nil {
		testenv.Skipf(tb, "no CPython 3.11-3.14 here: %v", err)
	}
	return it
}

// Target is it's lock target, like "cp313-x86_64".
func Target(it *pyenv.Interpreter) string {
	return "cp" + strings.ReplaceAll(it.Minor, ".", "") + "-" + it.Arch
}

// LockFixture locks the fixture app for target against real PyPI, with
// extra requirements (gunicorn alone when none are given).
func LockFixture(tb testing.TB, target string, extra ...string) *lockfile.Lock {
	tb.Helper()
	if len(extra) == 0 {
		extra = []string{"gunicorn==27.0.1"}
	}
	return lockSource(context.Background(), tb, Index{}, FixtureApp(), "1.0.0", target, extra)
}

// LockFixtureTree locks dir, a variant of the fixture app, as version for
// target, with extra requirements (gunicorn alone when none are given).
func LockFixtureTree(tb testing.TB, dir, version, target string, extra ...string) *lockfile.Lock {
	tb.Helper()
	if len(extra) == 0 {
		extra = []string{"gunicorn==27.0.1"}
	}
	return lockSource(context.Background(), tb, Index{}, dir, version, target, extra)
}

// LockTree locks dir as a local source of version for target, with the
// default extra requirements (gunicorn, whitenoise, psycopg).
func LockTree(ctx context.Context, tb testing.TB, idx Index, dir, version, target string) *lockfile.Lock {
	tb.Helper()
	return lockSource(ctx, tb, idx, dir, version, target, nil)
}

// lockSource locks dir as a user does: with "bitpoll-install lock", run
// from this module's source, under a root of its own (so that its index
// cache is new, as the rest of the test's). No extra requirements means
// lock's default set.
func lockSource(ctx context.Context, tb testing.TB, idx Index, dir, version, target string, extra []string) *lockfile.Lock {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), "bitpoll.lock")
	args := []string{"--root", tb.TempDir(), "lock", "--app-source", dir, "--app-version", version,
		"--target", target, "--exclude-newer", ExcludeNewer.Format(time.RFC3339), "-o", out}
	if idx.URL != "" {
		args = append(args, "--index-url", idx.URL)
	}
	for _, e := range extra {
		args = append(args, "--extra", e)
	}
	if msg, err := RunCLI(ctx, tb, args...); err != nil {
		tb.Fatalf("lock %s %s for %s: %v\n%s", dir, version, target, err, msg)
	}
	l, err := lockfile.ReadFile(out)
	if err != nil {
		tb.Fatalf("lock %s %s for %s: %v", dir, version, target, err)
	}
	return l
}

// RunCLI runs bitpoll-install, built from this module's source by "go
// run" (whose build cache keeps the binary between calls), with args,
// and returns its combined output.
func RunCLI(ctx context.Context, tb testing.TB, args ...string) ([]byte, error) {
	tb.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		testenv.Skip(tb, "the go command is not on PATH: it builds the CLI this test runs")
	}
	cmd := exec.CommandContext(ctx, goTool, append([]string{"run", "./cmd/bitpoll-install"}, args...)...)
	cmd.Dir = RepoRoot()
	return cmd.CombinedOutput()
}

// WriteLock writes l into a new file in a temporary directory.
func WriteLock(tb testing.TB, l *lockfile.Lock) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "bitpoll.lock")
	if err := lockfile.WriteFile(path, l); err != nil {
		tb.Fatal(err)
	}
	return path
}

// FreePort is a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// BuildCLI builds bitpoll-install from source into a temporary directory,
// statically, so that it also runs inside another root file system, with
// the build tags given (crashhook: a binary that kills itself at a phase).
func BuildCLI(tb testing.TB, tags ...string) string {
	tb.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		testenv.Skip(tb, "the go command is not on PATH: it builds the CLI this test runs")
	}
	bin := filepath.Join(tb.TempDir(), "bitpoll-install")
	cmd := exec.Command(goTool, "build", "-tags", strings.Join(tags, ","), "-o", bin, "github.com/bitpoll-install/bitpoll-install/cmd/bitpoll-install")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build the CLI: %v\n%s", err, out)
	}
	return bin
}

// BitpollMirror is the Bitpoll git mirror named by BITPOLL_MIRROR, or a
// skip.
func BitpollMirror(tb testing.TB) string {
	tb.Helper()
	return testenv.BitpollMirror(tb)
}

// Index is the package index a test lock resolves against; the zero
// value is lock's default, real PyPI.
type Index struct {
	URL string // a PEP 691 simple index
}

// RealIndex is real PyPI, or a skip when it cannot be reached.
func RealIndex(tb testing.TB) Index {
	tb.Helper()
	NeedNetwork(tb)
	return Index{}
}

// ExportRelease writes ref's tree from the mirror into a fresh directory.
// The mirror may lack large blobs (fonts of 4 MiB and more); each gets a
// placeholder, since collectstatic follows the CSS references to them and
// fails on a missing file. The tree is then no longer the upstream one,
// which is why callers lock it as a local source.
func ExportRelease(ctx context.Context, tb testing.TB, mirror, ref string) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "bitpoll-"+ref)
	exp, err := fetch.ExportGitTree(ctx, mirror, ref, dir)
	if err != nil {
		tb.Fatalf("ExportGitTree(%q, %q) = %v, want the tree exported", mirror, ref, err)
	}
	for _, p := range exp.Missing {
		path := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("placeholder for a blob missing from the mirror\n"), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	if len(exp.Missing) > 0 {
		tb.Logf("%s: %d blobs missing from the mirror, replaced by placeholders (first: %s)", ref, len(exp.Missing), exp.Missing[0])
	}
	return dir
}

// SyncBuffer collects a child's output from several goroutines.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WaitHTTP polls url until it answers (any status) or the timeout passes.
func WaitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within %v: %w", url, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Variants of the fixture app for generations: AddNote's migration adds a
// column (use it with FixtureVariant's withNote), DropNote's drops it
// again, data no reversal brings back.
var (
	AddNote = map[string]string{
		"fixtureapp/polls/migrations/0002_poll_note.py": `from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("polls", "0001_initial")]
    operations = [migrations.AddField("poll", "note", models.CharField(max_length=100, default=""))]
`,
	}
	DropNote = map[string]string{
		"fixtureapp/polls/migrations/0003_remove_poll_note.py": `from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("polls", "0002_poll_note")]
    operations = [migrations.RemoveField("poll", "note")]
`,
	}
)

// FixtureVariant is a copy of the fixture app with files added or
// replaced, and with the note field on its model when withNote.
func FixtureVariant(tb testing.TB, withNote bool, files ...map[string]string) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := os.CopyFS(dir, os.DirFS(FixtureApp())); err != nil {
		tb.Fatal(err)
	}
	for _, fs := range files {
		for name, text := range fs {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if withNote {
		models := filepath.Join(dir, "fixtureapp/polls/models.py")
		data, err := os.ReadFile(models)
		if err != nil {
			tb.Fatal(err)
		}
		data = bytes.Replace(data, []byte("    created = models.DateTimeField(auto_now_add=True)\n"),
			[]byte("    created = models.DateTimeField(auto_now_add=True)\n    note = models.CharField(max_length=100, default=\"\")\n"), 1)
		if err := os.WriteFile(models, data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}
