package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/service"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// TestServiceFilesKilled changes the config and kills install with
// SIGKILL at each step of writing the settings file and the template
// unit. The file is then whole, the old content or the new, never a mix;
// every generation verifies, and current has not moved. The rerun rolls
// the change out as a new generation with the new content, and no
// temporary file is left.
func TestServiceFilesKilled(t *testing.T) {
	e := newGenEnv(t)
	v1 := e.version(testkit.FixtureApp(), "1.0.0")
	install := append([]string{"install"}, v1...)
	r := e.must(install...)
	// The first install, in text: a line as each build step starts, in
	// order, and the steps' times at the end.
	at := 0
	for _, step := range []string{"fetching and verifying the app source...", "fetching the locked files...", "creating the venv...",
		"installing the wheels...", "compiling bytecode...", "preparing the app: collectstatic and translations...",
		"the store path is sealed and on disk (", "the migrations are applied (", "the health gate passed ("} {
		i := strings.Index(r.stderr[at:], "\n"+step)
		if i < 0 {
			t.Errorf("install's phase lines lack %q after byte %d:\n%s", step, at, r.stderr)
			continue
		}
		at += i + 1
	}
	if !regexp.MustCompile(`\ndone in [0-9.]+ s: fetch-app [0-9.]+ s, fetch-files [0-9.]+ s, venv [0-9.]+ s, install-wheels [0-9.]+ s, compile [0-9.]+ s, prepare-app [0-9.]+ s, .*migrated [0-9.]+ s, gate-passed [0-9.]+ s`).MatchString(r.stdout) {
		t.Errorf("install's summary:\n%s\nwant a line with each step's time", r.stdout)
	}
	// Each build step says what it did, with counts, and the summary
	// says, as uv does, how many packages were installed.
	l, err := lockfile.ReadFile(v1[1])
	if err != nil {
		t.Fatal(err)
	}
	n := len(l.Packages)
	counts := []*regexp.Regexp{
		regexp.MustCompile(fmt.Sprintf(`\ninstalled %d packages into the venv, [1-9][0-9]* files, in [0-9.]+ s\n`, n)),
		regexp.MustCompile(`\nthe venv is complete: [1-9][0-9]* bytecode files placed in it; compiled [0-9]+ files \(the app's, and the wheels' the cache lacked\) in [0-9.]+ s\n`),
		regexp.MustCompile(`\ncollected [1-9][0-9]* static files, translations (not )?compiled, in [0-9.]+ s\n`),
	}
	for _, re := range counts {
		if !re.MatchString(r.stderr) {
			t.Errorf("install's phase lines lack a match of %s:\n%s", re, r.stderr)
		}
	}
	if re := regexp.MustCompile(fmt.Sprintf(`\ninstalled %d packages in [0-9.]+ s\ndone in `, n)); !re.MatchString(r.stdout) {
		t.Errorf("install's summary:\n%s\nwant a match of %s", r.stdout, re)
	}
	config := filepath.Join(e.root, "etc/bitpoll/bitpoll.toml")
	base, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	files := []string{
		filepath.Join(e.root, "etc/bitpoll/settings.json"),
		filepath.Join(e.root, service.UnitDir, "bitpoll@.service"),
	}
	i := 0
	for _, file := range files {
		for _, step := range []store.Phase{service.PhaseFileTemp, service.PhaseFileWritten, service.PhaseFileRenamed} {
			i++
			t.Run(filepath.Base(file)+"/"+string(step), func(t *testing.T) {
				// A change to both files: a host for the settings, the
				// workers for the unit.
				host, workers := fmt.Sprintf("h%d.example.org", i), fmt.Sprintf("--workers %d ", 2+i)
				cfg := bytes.Replace(base, []byte(`allowed_hosts = ["localhost"]`), []byte(`allowed_hosts = ["localhost", "`+host+`"]`), 1)
				cfg = bytes.Replace(cfg, []byte("\nworkers = 2\n"), []byte(fmt.Sprintf("\nworkers = %d\n", 2+i)), 1)
				if bytes.Equal(cfg, base) {
					t.Fatal("the default config no longer has the lines this test edits")
				}
				if err := os.WriteFile(config, cfg, 0o644); err != nil {
					t.Fatal(err)
				}
				before := map[string]string{}
				for _, f := range files {
					before[f] = string(readFile(t, f))
				}
				gen, cur := e.current(), currentTarget(t, e.layout)

				killedAt(t, store.Phase(string(step)+"@"+filepath.Base(file)), append([]string{"--root", e.root}, install...))
				killed := map[string]string{}
				for _, f := range files {
					killed[f] = string(readFile(t, f))
				}
				checkStore(t, e.layout)
				if e.current() != gen || currentTarget(t, e.layout) != cur {
					t.Errorf("after a kill at %s of %s, current moved to generation %d", step, file, e.current())
				}

				e.must(install...)
				if e.current() != gen+1 {
					t.Errorf("after the rerun, generation %d is current, want %d: the config change is a generation of its own", e.current(), gen+1)
				}
				checkStore(t, e.layout)
				checkNoLeftovers(t, e.root)
				for _, f := range files {
					after := string(readFile(t, f))
					if k := killed[f]; k != before[f] && k != after {
						t.Errorf("after a kill at %s of %s, %s held neither the old content nor the new:\n%s", step, filepath.Base(file), f, k)
					}
				}
				if s := string(readFile(t, files[0])); !strings.Contains(s, host) {
					t.Errorf("after the rerun, %s lacks the new host %s:\n%s", files[0], host, s)
				}
				if u := string(readFile(t, files[1])); !strings.Contains(u, workers) {
					t.Errorf("after the rerun, %s lacks %q:\n%s", files[1], workers, u)
				}
			})
		}
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
