package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/resolve/index"
	"golang.org/x/tools/txtar"
)

// result is what one run of the command line did.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs the command line in-process, as main does.
func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	if hasFlag(args, "--json") {
		checkJSONOutput(t, args, stdout.String(), stderr.String())
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// runTLS runs the command line with every index client going through
// srv's TLS client, since a lock accepts only https URLs.
func runTLS(t *testing.T, srv *httptest.Server, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	g := &globalOptions{stdout: &stdout, stderr: &stderr, newIndex: func(o index.Options) *index.Client {
		o.HTTPClient = srv.Client()
		return index.New(o)
	}, httpClient: srv.Client()}
	code := execute(context.Background(), g, args)
	if hasFlag(args, "--json") {
		checkJSONOutput(t, args, stdout.String(), stderr.String())
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// runCase is one testdata/run/*.txtar file: a comment, header lines
// "args: ...", "exit: N", "stdout: TEXT" and "stderr: TEXT" (each TEXT must
// appear in that stream), "error: TEXT" (in the message of the --json
// error record), then "-- name --" files written to a fresh working
// directory.
type runCase struct {
	args                 []string
	exit                 int
	stdout, stderr, errs []string
	files                map[string]string
}

func readRunCase(t *testing.T, path string) runCase {
	t.Helper()
	a, err := txtar.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := runCase{exit: -1, files: map[string]string{}}
	for _, f := range a.Files {
		c.files[f.Name] = string(f.Data)
	}
	for line := range strings.Lines(string(a.Comment)) {
		key, value, _ := strings.Cut(strings.TrimRight(line, "\n"), ":")
		value = strings.TrimPrefix(value, " ")
		switch key {
		case "args":
			c.args = strings.Fields(value)
		case "exit":
			if c.exit, err = strconv.Atoi(value); err != nil {
				t.Fatalf("%s: exit %q is not a number", path, value)
			}
		case "stdout":
			c.stdout = append(c.stdout, value)
		case "stderr":
			c.stderr = append(c.stderr, value)
		case "error":
			c.errs = append(c.errs, value)
		}
	}
	if c.exit < 0 {
		t.Fatalf("%s: no exit line", path)
	}
	return c
}

// TestRun runs testdata/run/*.txtar: exit codes, messages, and the shape of
// --json errors.
func TestRun(t *testing.T) {
	paths, _ := filepath.Glob("testdata/run/*.txtar")
	if len(paths) == 0 {
		t.Fatal("no testdata/run/*.txtar cases")
	}
	// The schema is read by a path relative to this package: before any
	// case changes the working directory.
	outputSchema(t)
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			c := readRunCase(t, path)
			dir := t.TempDir()
			for name, body := range c.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			t.Chdir(dir)
			r := runCLI(t, c.args...)
			if r.code != c.exit {
				t.Errorf("run(%q) = %d, want %d\nstdout: %s\nstderr: %s", c.args, r.code, c.exit, r.stdout, r.stderr)
			}
			for _, want := range c.stdout {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("run(%q) stdout = %q, want it to contain %q", c.args, r.stdout, want)
				}
			}
			for _, want := range c.stderr {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("run(%q) stderr = %q, want it to contain %q", c.args, r.stderr, want)
				}
			}
			if len(c.errs) > 0 {
				msg := checkJSONError(t, r.stdout, c.exit)
				for _, want := range c.errs {
					if !strings.Contains(msg, want) {
						t.Errorf("run(%q) error = %q, want it to contain %q", c.args, msg, want)
					}
				}
			}
		})
	}
}

func hasFlag(args []string, flag string) bool {
	for _, a := range args {
		if a == flag {
			return true
		}
	}
	return false
}

// checkJSONError asserts that the last line of stdout is the JSON error
// record with the exit code, and returns its message.
func checkJSONError(t *testing.T, stdout string, code int) string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	var msg struct {
		MessageType string `json:"message_type"`
		Error       string `json:"error"`
		ExitCode    int    `json:"exit_code"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &msg); err != nil {
		t.Fatalf("--json output's last line %q is not JSON: %v", lines[len(lines)-1], err)
	}
	if msg.MessageType != "error" || msg.ExitCode != code || msg.Error == "" {
		t.Errorf("--json error = %+v, want message_type \"error\", exit_code %d and a message", msg, code)
	}
	return msg.Error
}

// TestLockCheckOffline proves that lock --check touches no network: the
// index fails the test on any request, and no index client is even built.
func TestLockCheckOffline(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("lock --check requested %s", r.URL)
		http.Error(w, "no", http.StatusTeapot)
	}))
	defer srv.Close()
	path := writeLock(t, t.TempDir(), smallLock())

	r := runCLI(t, "--root", t.TempDir(), "lock", "--check", path, "--index-url", srv.URL+"/simple/")
	if r.code != exitOK || !strings.Contains(r.stdout, "valid") {
		t.Errorf("lock --check = %d, %q, want 0 and \"valid\"; stderr: %s", r.code, r.stdout, r.stderr)
	}

	var out bytes.Buffer
	g := &globalOptions{stdout: &out, stderr: &out, newIndex: func(o index.Options) *index.Client {
		t.Errorf("lock --check built an index client for %s", o.IndexURL)
		return index.New(o)
	}}
	if err := runLock(context.Background(), g, lockOptions{Check: path, IndexURL: srv.URL + "/simple/"}); err != nil {
		t.Errorf("runLock(--check %s) = %v, want nil", path, err)
	}
}

// TestCommittedLockChecks runs lock --check on the repository's own lock.
func TestCommittedLockChecks(t *testing.T) {
	path := filepath.Join("..", "..", "bitpoll.lock")
	if _, err := os.Stat(path); err != nil {
		testenv.Skipf(t, "no committed lock: %v", err)
	}
	r := runCLI(t, "lock", "--check", path)
	if r.code != exitOK || !strings.Contains(r.stdout, path+": valid (bitpoll ") {
		t.Errorf("lock --check %s = %d, %q, want 0 and \"valid\"\nstderr: %s", path, r.code, r.stdout, r.stderr)
	}
}

// smallLock is a valid lock for two targets: a pure-Python package, a
// binary package with one wheel per target, a package only cp312 needs,
// and a build-only package, which no export may contain.
func smallLock() *lockfile.Lock {
	wheel := func(name string, n int) lockfile.File {
		return lockfile.File{
			Name: name, URL: "https://files.example.invalid/" + name, Size: int64(1000 + n),
			UploadTime: "2025-01-01T00:00:00Z", SHA256: strings.Repeat("0", 63) + strconv.Itoa(n),
		}
	}
	return &lockfile.Lock{
		LockVersion:       lockfile.Version,
		CreatedBy:         "bitpoll-install test",
		RequiresPython:    ">=3.12,<3.14",
		Glibc:             "2.28",
		Targets:           []string{"cp312-x86_64", "cp313-x86_64"},
		ExtraRequirements: []string{"gunicorn==23.0.0"},
		App: lockfile.App{
			Name: "bitpoll", Version: "0.2.0", URL: "https://example.invalid/bitpoll.git",
			Commit: strings.Repeat("a", 40), Tree: strings.Repeat("b", 40), Requirements: "requirements.txt",
		},
		Packages: []lockfile.Package{
			{Name: "django", Version: "6.0.5", Wheels: []lockfile.File{wheel("django-6.0.5-py3-none-any.whl", 1)}},
			{Name: "gunicorn", Version: "23.0.0", Wheels: []lockfile.File{wheel("gunicorn-23.0.0-py3-none-any.whl", 2)}},
			{Name: "psycopg-binary", Version: "3.2.3", Wheels: []lockfile.File{
				wheel("psycopg_binary-3.2.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", 3),
				wheel("psycopg_binary-3.2.3-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", 4),
			}},
			{Name: "setuptools", Version: "75.1.0", BuildOnly: true, Wheels: []lockfile.File{wheel("setuptools-75.1.0-py3-none-any.whl", 5)}},
			{Name: "tzdata", Version: "2025.1", Marker: `python_version < "3.13"`, Wheels: []lockfile.File{wheel("tzdata-2025.1-py2.py3-none-any.whl", 6)}},
		},
	}
}

// writeLock formats l into dir/bitpoll.lock and returns the path.
func writeLock(t *testing.T, dir string, l *lockfile.Lock) string {
	t.Helper()
	path := filepath.Join(dir, "bitpoll.lock")
	if err := lockfile.WriteFile(path, l); err != nil {
		t.Fatalf("write lock fixture: %v", err)
	}
	return path
}

// lookTool returns the path of an outside program, or skips the test.
func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		testenv.Skipf(t, "%s is not installed: this test needs it on PATH", name)
	}
	return p
}

// command runs an outside program and returns its standard output; it
// fails the test, showing standard error, if the program fails.
func command(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}
