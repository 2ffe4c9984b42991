package wheel

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
)

// TestCrossCheckPip installs the demo wheel with pip into one venv and
// with Install into another, then compares the files each added and their
// contents and executable bits. RECORD, INSTALLER, pip's REQUESTED and
// direct_url.json and bytecode are left aside; launchers are compared by
// running them, since their bodies differ by design. Our venv's path has a
// space, so the /bin/sh trampoline is exercised too.
func TestCrossCheckPip(t *testing.T) {
	if testing.Short() {
		t.Skip("creates two venvs and runs pip; skipped under -short")
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		testenv.Skip(t, "python3 not found on PATH; install it to cross-check with pip")
	}
	if err := exec.Command(python, "-m", "pip", "--version").Run(); err != nil {
		testenv.Skip(t, "pip is not available for python3; install it to cross-check with pip")
	}
	dir := t.TempDir()
	whl := demoWheel().build(t, dir)
	pipVenv, ourVenv := filepath.Join(dir, "pip"), filepath.Join(dir, "our venv")
	for _, v := range []string{pipVenv, ourVenv} {
		run(t, python, "-m", "venv", "--without-pip", v)
	}
	pipBefore, ourBefore := listFiles(t, pipVenv), listFiles(t, ourVenv)
	run(t, python, "-m", "pip", "--python", filepath.Join(pipVenv, "bin", "python"), "install",
		"--no-deps", "--no-compile", "--no-index", "--disable-pip-version-check", "--quiet", whl)

	s := sysconfigScheme(t, filepath.Join(ourVenv, "bin", "python"), "demo")
	if _, err := Install(whl, s, Options{Python: filepath.Join(ourVenv, "bin", "python"), Installer: "bitpoll-install"}); err != nil {
		t.Fatal(err)
	}

	skip := func(rel string) bool {
		base := filepath.Base(rel)
		return strings.Contains(rel, "__pycache__/") || strings.HasSuffix(rel, ".pyc") ||
			(strings.Contains(rel, ".dist-info/") && (base == "RECORD" || base == "INSTALLER" || base == "REQUESTED" || base == "direct_url.json"))
	}
	launchers := map[string]bool{"bin/demo": true, "bin/demo-gui": true}
	pipFiles := added(t, pipVenv, pipBefore, skip)
	ourFiles := added(t, ourVenv, ourBefore, skip)
	if len(pipFiles) < 10 {
		t.Fatalf("pip added only %q, want the demo wheel's files", keys(pipFiles))
	}
	if !reflect.DeepEqual(keys(pipFiles), keys(ourFiles)) {
		t.Fatalf("installed files differ:\npip:  %q\nours: %q", keys(pipFiles), keys(ourFiles))
	}
	for rel, pf := range pipFiles {
		of := ourFiles[rel]
		// The format asks installers to make .data scripts executable;
		// pip keeps the zip's bits instead, so only ours may add +x there.
		dataScript := strings.HasPrefix(rel, "bin/") && !launchers[rel]
		if pf.exec != of.exec && !(dataScript && of.exec) {
			t.Errorf("%s: executable = %v, pip made it %v", rel, of.exec, pf.exec)
		}
		if launchers[rel] {
			continue
		}
		// A rewritten "#!python" line names each venv's own interpreter.
		pc := strings.ReplaceAll(pf.body, filepath.Join(pipVenv, "bin", "python"), "PYTHON")
		oc := strings.ReplaceAll(of.body, shebang(filepath.Join(ourVenv, "bin", "python")), "#!PYTHON\n")
		if pc != oc {
			t.Errorf("%s: content = %q, pip wrote %q", rel, oc, pc)
		}
	}

	// RECORD lists the same paths in the same relative form, except the
	// files pip adds for itself.
	recPaths := func(venv string) []string {
		sp := sysconfigScheme(t, filepath.Join(venv, "bin", "python"), "demo").Purelib
		entries, err := parseRecord(strings.NewReader(readFile(t, filepath.Join(sp, "demo-1.0.dist-info", "RECORD"))))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			if !strings.HasSuffix(e.Path, "/REQUESTED") && !strings.HasSuffix(e.Path, "/direct_url.json") {
				out = append(out, e.Path)
			}
		}
		sort.Strings(out)
		return out
	}
	if p, o := recPaths(pipVenv), recPaths(ourVenv); !reflect.DeepEqual(p, o) {
		t.Errorf("RECORD paths differ:\npip:  %q\nours: %q", p, o)
	}

	// The launchers and the rewritten script run in our venv.
	for _, tt := range []struct{ script, want string }{
		{"run", "run\n"}, {"demo", ""}, {"demo-gui", ""},
	} {
		out, err := exec.Command(filepath.Join(ourVenv, "bin", tt.script)).CombinedOutput()
		if err != nil || string(out) != tt.want {
			t.Errorf("running bin/%s = %q, %v, want %q and exit 0", tt.script, out, err, tt.want)
		}
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
}

// sysconfigScheme asks the venv's interpreter for its install scheme, with
// headers where pip puts them in a venv.
func sysconfigScheme(t *testing.T, python, dist string) Scheme {
	t.Helper()
	out, err := exec.Command(python, "-c",
		"import json, sys, sysconfig; p = sysconfig.get_paths(); p['version'] = sysconfig.get_python_version(); p['prefix'] = sys.prefix; print(json.dumps(p))").Output()
	if err != nil {
		t.Fatalf("%s: read sysconfig: %v", python, err)
	}
	var p map[string]string
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	return Scheme{
		Purelib: p["purelib"], Platlib: p["platlib"], Scripts: p["scripts"], Data: p["data"],
		Headers: filepath.Join(p["prefix"], "include", "site", "python"+p["version"], dist),
	}
}

type fileInfo struct {
	body string
	exec bool
}

func listFiles(t *testing.T, root string) map[string]bool {
	t.Helper()
	out := make(map[string]bool)
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	return out
}

// added returns the regular files under root that are not in before.
func added(t *testing.T, root string, before map[string]bool, skip func(string) bool) map[string]fileInfo {
	t.Helper()
	out := make(map[string]fileInfo)
	for rel := range listFiles(t, root) {
		if before[rel] || skip(rel) {
			continue
		}
		p := filepath.Join(root, filepath.FromSlash(rel))
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		out[rel] = fileInfo{body: readFile(t, p), exec: fi.Mode()&0o111 != 0}
	}
	return out
}

func keys(m map[string]fileInfo) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
