package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/pyspec/wheeltag"
)

// readPylock parses a pylock.toml with Python's own TOML reader and returns
// its lock-version and, per package, "version: wheel names".
func readPylock(t *testing.T, python, path string) (string, map[string]string) {
	t.Helper()
	const script = `import json, sys, tomllib
with open(sys.argv[1], "rb") as f:
    d = tomllib.load(f)
print(json.dumps({"lock-version": d["lock-version"], "packages": {
    p["name"]: p["version"] + ": " + " ".join(w["name"] for w in p.get("wheels", []))
    for p in d["packages"]}}))`
	out := command(t, "", python, "-c", script, path)
	var doc struct {
		LockVersion string            `json:"lock-version"`
		Packages    map[string]string `json:"packages"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("python's reading of %s: %v\n%s", path, err, out)
	}
	return doc.LockVersion, doc.Packages
}

func TestExportPylock(t *testing.T) {
	python := lookTool(t, "python3")
	if err := exec.Command(python, "-c", "import tomllib").Run(); err != nil {
		testenv.Skipf(t, "%s has no tomllib (Python 3.11 or newer is needed): %v", python, err)
	}
	dir := t.TempDir()
	lock := writeLock(t, dir, smallLock())
	tests := []struct {
		target string
		want   map[string]string
	}{
		{"cp313-x86_64", map[string]string{
			"django":         "6.0.5: django-6.0.5-py3-none-any.whl",
			"gunicorn":       "23.0.0: gunicorn-23.0.0-py3-none-any.whl",
			"psycopg-binary": "3.2.3: psycopg_binary-3.2.3-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
		}},
		{"cp312-x86_64", map[string]string{
			"django":         "6.0.5: django-6.0.5-py3-none-any.whl",
			"gunicorn":       "23.0.0: gunicorn-23.0.0-py3-none-any.whl",
			"psycopg-binary": "3.2.3: psycopg_binary-3.2.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
			"tzdata":         "2025.1: tzdata-2025.1-py2.py3-none-any.whl",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			out := filepath.Join(dir, "pylock."+tt.target+".toml")
			r := runCLI(t, "export", "pylock", "--lock", lock, "--target", tt.target, "-o", out)
			if r.code != exitOK {
				t.Fatalf("export pylock --target %s = %d, want 0\nstderr: %s", tt.target, r.code, r.stderr)
			}
			if want := "wrote " + out + " for " + tt.target; !strings.Contains(r.stderr, want) {
				t.Errorf("export pylock stderr = %q, want %q", r.stderr, want)
			}
			version, pkgs := readPylock(t, python, out)
			if version != "1.0" {
				t.Errorf("pylock lock-version = %q, want \"1.0\"", version)
			}
			if fmt.Sprint(pkgs) != fmt.Sprint(tt.want) {
				t.Errorf("pylock packages for %s = %v, want %v", tt.target, pkgs, tt.want)
			}

			// "-o -", the default, writes the same bytes to standard output.
			file, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			r = runCLI(t, "export", "pylock", "--lock", lock, "--target", tt.target)
			if r.code != exitOK || r.stdout != string(file) {
				t.Errorf("export pylock to stdout = %d, %d bytes, want 0 and the %d bytes of %s", r.code, len(r.stdout), len(file), out)
			}
		})
	}
}

// TestExportPylockUV is the cross-check of the committed lock: uv installs
// the exported pylock.toml from PyPI, and must end up with exactly the
// lock's packages at the lock's versions.
func TestExportPylockUV(t *testing.T) {
	if testing.Short() {
		t.Skip("installs Bitpoll's dependencies from PyPI: skipped under -short")
	}
	lockPath := filepath.Join("..", "..", "bitpoll.lock")
	if _, err := os.Stat(lockPath); err != nil {
		testenv.Skipf(t, "no committed lock to cross-check: %v", err)
	}
	uv := lookTool(t, "uv")
	skipWithoutPyPI(t)
	python := findPython(t, uv, "3.13")

	const target = "cp313-x86_64"
	l, err := lockfile.ReadFile(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	glibc, err := wheeltag.ParseGlibc(l.Glibc)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := wheeltag.ParseTarget(target, glibc)
	if err != nil {
		t.Fatal(err)
	}
	sel, err := l.ForTarget(tg)
	if err != nil {
		t.Fatalf("the committed lock has no file set for %s: %v", target, err)
	}
	want := map[string]string{}
	for _, s := range sel {
		want[s.Package.Name] = s.Package.Version
	}

	dir := t.TempDir()
	pylock := filepath.Join(dir, "pylock.toml")
	if r := runCLI(t, "export", "pylock", "--lock", lockPath, "--target", target, "-o", pylock); r.code != exitOK {
		t.Fatalf("export pylock --target %s = %d, want 0\nstderr: %s", target, r.code, r.stderr)
	}
	venv := filepath.Join(dir, "venv")
	command(t, dir, uv, "venv", "--quiet", "--no-config", "--python", python, venv)
	vpython := filepath.Join(venv, "bin", "python")
	command(t, dir, uv, "pip", "install", "--quiet", "--no-config", "--python", vpython, "-r", pylock)

	var listed []struct{ Name, Version string }
	out := command(t, dir, uv, "pip", "list", "--no-config", "--python", vpython, "--format", "json")
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("uv pip list: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, p := range listed {
		got[normalizeName(p.Name)] = p.Version
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("uv installed %s, want the lock's %s", describe(got), describe(want))
	}

	t.Logf("uv installed the %d packages the lock selects for %s", len(got), target)
	django := strings.TrimSpace(command(t, dir, vpython, "-c", "import django; print(django.__version__)"))
	if django != want["django"] {
		t.Errorf("import django in the venv: version %q, want the locked %q", django, want["django"])
	}
}

// normalizeName is PEP 503 normalisation, for names as uv prints them.
func normalizeName(s string) string {
	s = strings.ToLower(s)
	return strings.NewReplacer("_", "-", ".", "-").Replace(s)
}

func describe(m map[string]string) string {
	s := make([]string, 0, len(m))
	for k, v := range m {
		s = append(s, k+"=="+v)
	}
	sort.Strings(s)
	return fmt.Sprintf("%d packages [%s]", len(s), strings.Join(s, " "))
}

// skipWithoutPyPI skips a test when BITPOLL_OFFLINE is set or PyPI does
// not answer.
func skipWithoutPyPI(t *testing.T) {
	t.Helper()
	if os.Getenv("BITPOLL_OFFLINE") != "" {
		t.Skip("BITPOLL_OFFLINE is set: skipping a test that needs PyPI")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, "https://pypi.org/simple/django/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		testenv.Skipf(t, "PyPI is unreachable: %v", err)
	}
	resp.Body.Close()
}

// findPython returns a CPython of the given minor version: the one uv
// finds, else a pyenv installation.
func findPython(t *testing.T, uv, minor string) string {
	t.Helper()
	if out, err := exec.Command(uv, "python", "find", "--no-config", "--no-python-downloads", minor).Output(); err == nil {
		return strings.TrimSpace(string(out))
	}
	if pyenv, err := exec.LookPath("pyenv"); err == nil {
		if out, err := exec.Command(pyenv, "prefix", minor).Output(); err == nil {
			p := filepath.Join(strings.TrimSpace(string(out)), "bin", "python"+minor)
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	testenv.Skipf(t, "no Python %s: neither uv python find nor pyenv knows one", minor)
	return ""
}

// TestExportPylockDefaultLock: without --lock, export takes the lock
// install takes, the one built in, and not a bitpoll.lock that happens to
// lie in the working directory.
func TestExportPylockDefaultLock(t *testing.T) {
	committed, err := filepath.Abs(filepath.Join("..", "..", "bitpoll.lock"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeLock(t, dir, smallLock()) // another lock, in the working directory
	t.Chdir(dir)
	r := runCLI(t, "export", "pylock", "--target", "cp313-x86_64")
	want := runCLI(t, "export", "pylock", "--lock", committed, "--target", "cp313-x86_64")
	if r.code != exitOK || want.code != exitOK {
		t.Fatalf("export pylock = %d (%s), with --lock = %d (%s), want 0 for both", r.code, r.stderr, want.code, want.stderr)
	}
	if r.stdout != want.stdout {
		t.Errorf("export pylock without --lock wrote another pylock than with --lock %s, the built-in lock:\n%s", committed, r.stdout)
	}
	if !strings.Contains(r.stdout, `name = "django"`) || strings.Contains(r.stdout, "files.example.invalid") {
		t.Errorf("export pylock without --lock:\n%s\nwant the built-in lock's Django, not the working directory's lock", r.stdout)
	}
}
