package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/serve"
)

// jsonCase is one command line run with --json, and the message types its
// output must hold (besides any others the schema allows).
type jsonCase struct {
	args []string // after "--json"; $NAME is replaced by the test
	code int
	want []string
}

// offlineJSONCases need no network: TestJSONOutputOffline runs them.
var offlineJSONCases = []jsonCase{
	{[]string{"--version"}, exitOK, []string{"version"}},
	{[]string{"--help"}, exitOK, []string{"help"}},
	{[]string{"help", "lock"}, exitOK, []string{"help"}},
	{[]string{"export"}, exitOK, []string{"help"}},
	{[]string{"lock", "--check", "$LOCK1"}, exitOK, []string{"check"}},
	{[]string{"lock", "--check", "$MISSING"}, exitFailure, []string{"error"}},
	{[]string{"lock", "--app-source", "$REPO", "--app-version", "0.1.0", "--index-url", "$INDEX", "--extra", "gunicorn==23.0.0",
		"--target", "cp313-x86_64", "--exclude-newer", "2026-01-01", "-o", "$DIR/new.lock"}, exitOK, []string{"note", "lock"}},
	{[]string{"export", "pylock", "--lock", "$LOCK1"}, exitOK, []string{"export"}},
	{[]string{"export", "pylock", "--lock", "$LOCK1", "-o", "$DIR/pylock.toml"}, exitOK, []string{"export"}},
	{[]string{"audit", "--lock", "$LOCK1", "--json-api-url", "$JSONAPI"}, exitFindings, []string{"vulnerability", "audit", "error"}},
	{[]string{"unit", "--config", "$CONFIG"}, exitOK, []string{"unit"}},
	{[]string{"nginx", "--config", "$CONFIG"}, exitOK, []string{"nginx"}},
	{[]string{"docs", "man", "$DIR/man"}, exitOK, []string{"docs"}},
	{[]string{"completion", "bash"}, exitOK, []string{"completion"}},
	{[]string{"completion", "zsh"}, exitOK, []string{"completion"}},
	{[]string{"completion", "fish"}, exitOK, []string{"completion"}},
	{[]string{"completion", "powershell"}, exitOK, []string{"completion"}},
	{[]string{"--root", "$DIR/root", "manage", "check"}, exitUsage, []string{"error"}},
	{[]string{"--root", "$DIR/root", "rollback"}, exitFailure, []string{"error"}},
	{[]string{"--root", "$DIR/root", "upgrade"}, exitFailure, []string{"error"}},
	{[]string{"frob"}, exitUsage, []string{"error"}},
}

// generationJSONCases run in order on one --root with the fixture app:
// TestJSONOutputGenerations. $V1 and $V2 are the build flags of two
// versions; run is stopped once it is ready.
var generationJSONCases = []jsonCase{
	{[]string{"install", "$V1"}, exitOK, []string{"fetch_start", "fetched", "fetch_summary", "phase", "note", "switch"}},
	{[]string{"generations"}, exitOK, []string{"generation"}},
	{[]string{"upgrade", "$V2"}, exitOK, []string{"phase", "switch"}},
	{[]string{"rollback"}, exitOK, []string{"phase", "switch"}},
	{[]string{"gc", "--dry-run"}, exitOK, []string{"gc"}},
	{[]string{"verify"}, exitOK, []string{"verify_summary"}},
	{[]string{"backup", "-o", "$BACKUP"}, exitOK, []string{"backup"}},
	{[]string{"backup", "--verify", "$BACKUP"}, exitOK, []string{"backup_verify"}},
	{[]string{"restore", "$BACKUP"}, exitOK, []string{"restore"}},
	{[]string{"status"}, exitOK, []string{"status"}},
	{[]string{"doctor"}, exitOK, []string{"doctor_check", "doctor_summary"}},
	{[]string{"sbom", "-o", "-"}, exitOK, []string{"sbom"}},
	{[]string{"bundle", "-o", "$BUNDLE", "--lock", "$LOCK1", "--app-source", "$APP1"}, exitOK, []string{"bundle"}},
	{[]string{"run", "--port", "$PORT", "$V1"}, exitOK, []string{"build", "log", "ready"}},
	{[]string{"dev", "--lock", "$LOCK1", "--app-source", "$CHECKOUT", "--python", "$PYTHON", "--", "check"}, exitOK, []string{"build", "log"}},
}

// printedElsewhere are the message types that only a damaged install
// prints, each with the test that damages one and checks its --json
// output against the schema (as every runCLI with --json does).
var printedElsewhere = map[string]string{"finding": "TestVerify"}

// TestJSONCasesCoverCommandsAndSchema: every command of the tree has a
// --json case above, and the cases together print every message type
// the schema declares, so that neither a new command nor a record type
// that nothing prints any more goes unnoticed.
func TestJSONCasesCoverCommandsAndSchema(t *testing.T) {
	_, types := outputSchema(t)
	covered := map[string]bool{}
	printed := map[string]bool{}
	for _, c := range slices.Concat(offlineJSONCases, generationJSONCases) {
		covered[commandOf(c.args)] = true
		for _, w := range c.want {
			printed[w] = true
		}
	}
	var stdout, stderr bytes.Buffer
	root := newRootCommand(&globalOptions{stdout: &stdout, stderr: &stderr})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" && c.Parent() != nil && c.Parent() != root {
			return
		}
		if c.Runnable() && !c.HasSubCommands() {
			path := strings.TrimPrefix(strings.TrimPrefix(c.CommandPath(), root.Name()), " ")
			if !covered[path] {
				t.Errorf("command %q has no --json case in json_output_test.go", path)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	for typ := range printedElsewhere {
		printed[typ] = true
	}
	for _, typ := range types {
		if !printed[typ] {
			t.Errorf("no --json case prints message type %q, which output.schema.json declares", typ)
		}
		delete(printed, typ)
	}
	for typ := range printed {
		t.Errorf("a --json case wants message type %q, which output.schema.json does not declare", typ)
	}
}

// commandOf is the command path in args: the words before the first flag
// or argument that is no command name.
func commandOf(args []string) string {
	var words []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--root" {
			i++
			continue
		}
		if strings.HasPrefix(a, "-") || strings.HasPrefix(a, "$") || (len(words) > 0 && !isSubcommand(words, a)) {
			break
		}
		words = append(words, a)
	}
	return strings.Join(words, " ")
}

func isSubcommand(parents []string, name string) bool {
	switch strings.Join(parents, " ") {
	case "export":
		return name == "pylock"
	case "docs":
		return name == "man"
	case "completion":
		return slices.Contains([]string{"bash", "zsh", "fish", "powershell"}, name)
	case "help":
		return false
	}
	return false
}

// runJSONCase runs c with --json through run (or, with srv set, the
// index client that trusts srv), checks every line against the schema
// and the exit code, and returns the records.
func runJSONCase(t *testing.T, c jsonCase, vars map[string][]string, run func(args ...string) result) []record {
	t.Helper()
	args := []string{"--json"}
	for _, a := range c.args {
		if v, ok := vars[a]; ok {
			args = append(args, v...)
			continue
		}
		for name, v := range vars {
			if len(v) == 1 {
				a = strings.ReplaceAll(a, name, v[0])
			}
		}
		args = append(args, a)
	}
	r := run(args...)
	if r.code != c.code {
		t.Errorf("%q = exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, r.code, c.code, r.stdout, r.stderr)
	}
	recs := checkJSONOutput(t, args, r.stdout, r.stderr)
	seen := map[string]bool{}
	for _, rec := range recs {
		seen[rec.typ()] = true
	}
	for _, w := range c.want {
		if !seen[w] {
			t.Errorf("%q printed no %q record; it printed:\n%s", args, w, r.stdout)
		}
	}
	if c.code != exitOK && len(recs) > 0 && recs[len(recs)-1].typ() != "error" {
		t.Errorf("%q failed, and its last record is %q, want the error", args, recs[len(recs)-1].typ())
	}
	return recs
}

// TestJSONOutputOffline runs every command that needs no network with
// --json, and checks each line against output.schema.json.
func TestJSONOutputOffline(t *testing.T) {
	dir := t.TempDir()
	one := smallLock()
	one.Targets = []string{"cp313-x86_64"}
	for i := range one.Packages {
		one.Packages[i].Wheels = slices.DeleteFunc(one.Packages[i].Wheels, func(f lockfile.File) bool { return strings.Contains(f.Name, "cp312") })
	}
	lock1 := writeLock(t, t.TempDir(), one)
	config := filepath.Join(dir, "bitpoll.toml")
	if err := os.WriteFile(config, []byte("base_url = \"https://poll.example.org\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	repo := appRepo(t)
	ix := newPEP691Index(t,
		release{name: "django", version: "6.0.5", requires: []string{"asgiref>=3.8.1", "sqlparse>=0.3.1"}, tags: []string{"py3-none-any"}},
		release{name: "asgiref", version: "3.8.1", tags: []string{"py3-none-any"}},
		release{name: "sqlparse", version: "0.5.1", tags: []string{"py3-none-any"}},
		release{name: "psycopg-binary", version: "3.2.3", tags: []string{"cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64"}},
		release{name: "gunicorn", version: "23.0.0", requires: []string{"packaging"}, tags: []string{"py3-none-any"}},
		release{name: "packaging", version: "24.0", tags: []string{"py3-none-any"}},
	)
	api := jsonAPI(t, map[string]string{"django/6.0.5": djangoAdvisory})
	vars := map[string][]string{
		"$LOCK1": {lock1}, "$MISSING": {filepath.Join(dir, "missing.lock")}, "$REPO": {repo}, "$INDEX": {ix.srv.URL + "/simple/"},
		"$JSONAPI": {api.URL + "/pypi/"}, "$CONFIG": {config}, "$DIR": {dir},
	}
	for _, c := range offlineJSONCases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			runJSONCase(t, c, vars, func(args ...string) result { return runTLS(t, ix.srv, args...) })
		})
	}
}

// TestJSONOutputGenerations runs the commands that build, switch and
// serve with --json on one --root, and checks each line against
// output.schema.json: the records of the fetch, the phases, the switch,
// and the child processes' lines as log records.
func TestJSONOutputGenerations(t *testing.T) {
	e := newGenEnv(t)
	v1 := e.version(testkit.FixtureApp(), "1.0.0")
	v2 := e.version(testkit.FixtureVariant(t, true, testkit.AddNote), "1.0.2")
	port := testkit.FreePort(t)
	// dev writes the settings shim into its checkout: a copy.
	checkout := t.TempDir()
	if err := os.CopyFS(checkout, os.DirFS(testkit.FixtureApp())); err != nil {
		t.Fatal(err)
	}
	vars := map[string][]string{"$V1": v1, "$V2": v2, "$PORT": {strconv.Itoa(port)},
		"$LOCK1": {v1[1]}, "$APP1": {v1[3]}, "$BUNDLE": {filepath.Join(t.TempDir(), "x.bundle")}, "$CHECKOUT": {checkout}, "$PYTHON": {e.python},
		"$BACKUP": {filepath.Join(t.TempDir(), "backup.tar.gz")}}
	// gunicorn's control socket: under the root, one per port, even where
	// the user's environment names a runtime directory.
	userRuntime := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", userRuntime)
	control := filepath.Join(serve.ControlDir(e.layout.StateDir(), port), "gunicorn.ctl")
	serving := func() {
		if fi, err := os.Stat(control); err != nil || fi.Mode().Type() != os.ModeSocket {
			t.Errorf("while run serves, its control socket %s: %v, want a socket there", control, err)
		}
		if ents, _ := os.ReadDir(userRuntime); len(ents) > 0 {
			t.Errorf("run put %s into the user's runtime directory; want nothing there", ents[0].Name())
		}
	}
	for _, c := range generationJSONCases {
		run := func(args ...string) result { return e.cli(args...) }
		if cmd := commandOf(c.args); cmd == "run" || cmd == "dev" {
			run = func(args ...string) result { return e.serveUntilReady(serving, args...) }
		}
		recs := runJSONCase(t, c, vars, run)
		switch commandOf(c.args) {
		case "install", "upgrade", "rollback":
			last := recs[len(recs)-1]
			if last.typ() != "switch" {
				t.Errorf("%s: the last record is %q, want the switch", c.args[0], last.typ())
			}
			// How many packages the build installed: null for a
			// rollback, which builds nothing; the lock's count for the
			// first install.
			got, has := last["packages_installed"]
			switch c.args[0] {
			case "rollback":
				if !has || got != nil {
					t.Errorf("rollback's switch record: packages_installed = %v, want null", got)
				}
			case "install":
				l, err := lockfile.ReadFile(v1[1])
				if err != nil {
					t.Fatal(err)
				}
				if got != float64(len(l.Packages)) {
					t.Errorf("install's switch record: packages_installed = %v, want %d, the lock's packages", got, len(l.Packages))
				}
			}
			if c.args[0] != "install" {
				break
			}
			// The build's steps start in order and are timed in the switch.
			var started []string
			for _, r := range recs {
				if r.typ() == "phase" && r["status"] == "started" {
					started = append(started, r["phase"].(string))
				}
			}
			want := []string{"fetch-app", "fetch-files", "venv", "install-wheels", "compile", "prepare-app", "manifest"}
			if !slices.Equal(started, want) {
				t.Errorf("install's started phases = %q, want %q", started, want)
			}
			phases, _ := last["phases_ms"].(map[string]any)
			for _, p := range append(want, "sealed", "migrated", "gate-passed", "current-switched") {
				if _, ok := phases[p]; !ok {
					t.Errorf("install's switch record has no time for %s: %v", p, phases)
				}
			}
		case "run":
			var sources []string
			for _, r := range recs {
				if r.typ() == "log" {
					sources = append(sources, r["source"].(string))
				}
			}
			if !slices.Contains(sources, "migrate") || !slices.Contains(sources, "gunicorn") {
				sort.Strings(sources)
				t.Errorf("run --json logged lines of %q, want migrate's and gunicorn's", slices.Compact(sources))
			}
		}
	}
}

// serveUntilReady runs run or dev in the root of e until its "ready"
// record (run) or its end (dev), calls serving when ready, then stops it
// as Ctrl-C would.
func (e *genEnv) serveUntilReady(serving func(), args ...string) result {
	e.t.Helper()
	var stdout, stderr testkit.SyncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"--root", e.root}, args...), &stdout, &stderr)
	}()
	deadline := time.After(3 * time.Minute)
	for {
		select {
		case code := <-done:
			return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
		case <-deadline:
			cancel()
			<-done
			e.t.Fatalf("%q: not ready in 3 minutes\n%s%s", args, stdout.String(), stderr.String())
		case <-time.After(100 * time.Millisecond):
			if strings.Contains(stdout.String(), `"message_type":"ready"`) {
				serving()
				cancel()
				code := <-done
				return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
			}
		}
	}
}
