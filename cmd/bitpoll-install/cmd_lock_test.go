package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/resolve"
)

// release is one version of a project on the generated index.
type release struct {
	name, version string
	requires      []string // Requires-Dist
	tags          []string // wheel tags: "py3-none-any", "cp313-cp313-manylinux_2_17_x86_64"
	uploaded      time.Time
}

var indexEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// pep691Index serves releases over https as a PEP 691 JSON index with PEP 658
// metadata. Wheel bodies are placeholders: locking never downloads them.
type pep691Index struct {
	srv    *httptest.Server
	files  map[string][]byte // URL path -> body
	sha256 map[string]string // wheel file name -> hex digest of its body
}

func newPEP691Index(t *testing.T, releases ...release) *pep691Index {
	t.Helper()
	ix := &pep691Index{files: map[string][]byte{}, sha256: map[string]string{}}
	pages := map[string][]map[string]any{}
	for _, r := range releases {
		up := r.uploaded
		if up.IsZero() {
			up = indexEpoch
		}
		var md strings.Builder
		fmt.Fprintf(&md, "Metadata-Version: 2.1\nName: %s\nVersion: %s\n", r.name, r.version)
		for _, req := range r.requires {
			fmt.Fprintf(&md, "Requires-Dist: %s\n", req)
		}
		for _, tag := range r.tags {
			fn := fmt.Sprintf("%s-%s-%s.whl", strings.ReplaceAll(r.name, "-", "_"), r.version, tag)
			body := []byte("placeholder for " + fn)
			ix.files["/files/"+fn] = body
			ix.files["/files/"+fn+".metadata"] = []byte(md.String())
			ix.sha256[fn] = hexSHA256(body)
			pages[r.name] = append(pages[r.name], map[string]any{
				"filename":      fn,
				"url":           "../../files/" + fn,
				"hashes":        map[string]string{"sha256": ix.sha256[fn]},
				"size":          len(body),
				"upload-time":   up.Format(time.RFC3339),
				"core-metadata": map[string]string{"sha256": hexSHA256([]byte(md.String()))},
			})
		}
	}
	for name, files := range pages {
		page, err := json.Marshal(map[string]any{"meta": map[string]any{"api-version": "1.1"}, "name": name, "files": files})
		if err != nil {
			t.Fatal(err)
		}
		ix.files["/simple/"+name+"/"] = page
	}
	ix.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := ix.files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/simple/") {
			w.Header().Set("Content-Type", "application/vnd.pypi.simple.v1+json")
		}
		w.Write(body)
	}))
	t.Cleanup(ix.srv.Close)
	return ix
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// appRepo makes a git repository with two releases of an app, tagged
// 0.1.0 (annotated) and 0.2.0 (lightweight), that pin different Djangos.
func appRepo(t *testing.T) string {
	t.Helper()
	git := lookTool(t, "git")
	dir := t.TempDir()
	g := func(args ...string) string {
		base := []string{"-c", "user.name=Test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", "-c", "init.defaultBranch=main"}
		return strings.TrimSpace(command(t, dir, git, append(base, args...)...))
	}
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g("init", "-q")
	write("manage.py", "print('bitpoll')\n")
	write("requirements.txt", "# pinned\ndjango==6.0.5\nasgiref==3.8.1\nsqlparse==0.5.1\npsycopg-binary==3.2.3\n")
	g("add", ".")
	g("commit", "-q", "-m", "release 0.1.0")
	g("tag", "-a", "-m", "0.1.0", "0.1.0")
	write("requirements.txt", "# pinned\ndjango==6.0.6\nasgiref==3.8.1\nsqlparse==0.5.1\npsycopg-binary==3.2.3\n")
	g("commit", "-q", "-am", "release 0.2.0")
	g("tag", "0.2.0")
	return dir
}

// TestLockEndToEnd locks a git app source against a generated index, checks
// the pins, then locks again and wants the same bytes.
func TestLockEndToEnd(t *testing.T) {
	repo := appRepo(t)
	late := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	ix := newPEP691Index(t,
		release{name: "django", version: "6.0.5", requires: []string{"asgiref>=3.8.1", "sqlparse>=0.3.1"}, tags: []string{"py3-none-any"}},
		release{name: "django", version: "6.0.6", requires: []string{"asgiref>=3.8.1", "sqlparse>=0.3.1"}, tags: []string{"py3-none-any"}},
		release{name: "asgiref", version: "3.8.1", tags: []string{"py3-none-any"}},
		release{name: "sqlparse", version: "0.5.1", tags: []string{"py3-none-any"}},
		release{name: "psycopg-binary", version: "3.2.3", tags: []string{
			"cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
			"cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64",
			"cp313-cp313-win_amd64",
		}},
		release{name: "gunicorn", version: "23.0.0", requires: []string{"packaging"}, tags: []string{"py3-none-any"}},
		release{name: "packaging", version: "24.0", tags: []string{"py3-none-any"}},
		// Uploaded after --exclude-newer: the lock must not see it.
		release{name: "packaging", version: "25.0", tags: []string{"py3-none-any"}, uploaded: late},
	)
	out := filepath.Join(t.TempDir(), "bitpoll.lock")
	args := []string{
		"--root", t.TempDir(), "lock",
		"--app-source", repo, "--app-version", "~0.1",
		"--index-url", ix.srv.URL + "/simple/",
		"--extra", "gunicorn==23.0.0",
		"--target", "cp313-x86_64", "--target", "cp312-x86_64",
		"--exclude-newer", "2026-01-01",
		"-o", out,
	}
	r := runTLS(t, ix.srv, args...)
	if r.code != exitOK {
		t.Fatalf("lock = %d, want 0\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "wrote "+out+": bitpoll 0.1.0, 6 packages for 2 targets") {
		t.Errorf("lock stdout = %q, want a summary of bitpoll 0.1.0 with 6 packages for 2 targets", r.stdout)
	}
	first, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	l, err := lockfile.Parse(first, out)
	if err != nil {
		t.Fatalf("the written lock does not parse: %v", err)
	}

	commit := strings.TrimSpace(command(t, repo, "git", "rev-parse", "0.1.0^{commit}"))
	tree := strings.TrimSpace(command(t, repo, "git", "rev-parse", "0.1.0^{tree}"))
	app := []struct{ field, got, want string }{
		{"version", l.App.Version, "0.1.0"},
		{"commit", l.App.Commit, commit},
		{"tree", l.App.Tree, tree},
		{"requirements", l.App.Requirements, "requirements.txt"},
		{"exclude-newer", l.ExcludeNewer, "2026-01-01T00:00:00Z"},
	}
	for _, c := range app {
		if c.got != c.want {
			t.Errorf("lock %s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if !strings.HasPrefix(l.App.NarHash, "sha256-") {
		t.Errorf("lock nar-hash = %q, want an SRI sha256 hash", l.App.NarHash)
	}
	if nix, err := exec.LookPath("nix"); err == nil {
		// Nix itself must agree on the NAR hash of the tagged tree.
		co := filepath.Join(t.TempDir(), "co")
		command(t, repo, "git", "clone", "-q", "--branch", "0.1.0", repo, co)
		if err := os.RemoveAll(filepath.Join(co, ".git")); err != nil {
			t.Fatal(err)
		}
		want := strings.TrimSpace(command(t, co, nix, "--extra-experimental-features", "nix-command", "hash", "path", co))
		if l.App.NarHash != want {
			t.Errorf("lock nar-hash = %q, want %q as nix hash path prints it", l.App.NarHash, want)
		}
	} else {
		t.Log("nix is not installed: the nar-hash is not cross-checked")
	}
	if want := []string{"cp312-x86_64", "cp313-x86_64"}; fmt.Sprint(l.Targets) != fmt.Sprint(want) {
		t.Errorf("lock targets = %v, want %v", l.Targets, want)
	}

	wantWheels := map[string][]string{
		"asgiref":        {"asgiref-3.8.1-py3-none-any.whl"},
		"django":         {"django-6.0.5-py3-none-any.whl"},
		"gunicorn":       {"gunicorn-23.0.0-py3-none-any.whl"},
		"packaging":      {"packaging-24.0-py3-none-any.whl"},
		"psycopg-binary": {"psycopg_binary-3.2.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "psycopg_binary-3.2.3-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"},
		"sqlparse":       {"sqlparse-0.5.1-py3-none-any.whl"},
	}
	got := map[string][]string{}
	for _, p := range l.Packages {
		for _, w := range p.Wheels {
			got[p.Name] = append(got[p.Name], w.Name)
			if w.SHA256 != ix.sha256[w.Name] || w.URL != ix.srv.URL+"/files/"+w.Name {
				t.Errorf("wheel %s = %s sha256 %s, want %s sha256 %s", w.Name, w.URL, w.SHA256, ix.srv.URL+"/files/"+w.Name, ix.sha256[w.Name])
			}
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(wantWheels) {
		t.Errorf("locked wheels = %v, want %v", got, wantWheels)
	}

	r = runTLS(t, ix.srv, args...)
	if r.code != exitOK {
		t.Fatalf("second lock = %d, want 0\nstderr: %s", r.code, r.stderr)
	}
	second, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(first) != string(second) {
		t.Errorf("a second lock with the same inputs differs:\n--- first\n%s\n--- second\n%s", first, second)
	}

	// One target: the summary says "1 target", in the singular.
	one := filepath.Join(t.TempDir(), "one.lock")
	r = runTLS(t, ix.srv, "--root", t.TempDir(), "lock",
		"--app-source", repo, "--app-version", "~0.1",
		"--index-url", ix.srv.URL+"/simple/",
		"--extra", "gunicorn==23.0.0",
		"--target", "cp313-x86_64",
		"--exclude-newer", "2026-01-01",
		"-o", one)
	if r.code != exitOK {
		t.Fatalf("lock for one target = %d, want 0\nstderr: %s", r.code, r.stderr)
	}
	if want := regexp.MustCompile(`(?m)^wrote ` + regexp.QuoteMeta(one) + `: bitpoll 0\.1\.0, 6 packages for 1 target in [0-9.]+s$`); !want.MatchString(r.stdout) || strings.Contains(r.stdout, "1 targets") {
		t.Errorf("lock for one target stdout = %q, want a line matching %s", r.stdout, want)
	}
}

// TestLockBareDefaultsBitpoll runs lock with no target flags on real
// Bitpoll 0.11.0 from the mirror against real PyPI: the defaults include
// aarch64, where libsass has no wheel, and the lock must still succeed, with
// libsass's sdist marked for the aarch64 targets. lock --check accepts the
// result and refuses it once an aarch64 target is taken off the marking.
func TestLockBareDefaultsBitpoll(t *testing.T) {
	mirror := testenv.BitpollMirror(t)
	testenv.NeedPyPI(t, "locks real Bitpoll against real PyPI")
	out := filepath.Join(t.TempDir(), "bitpoll.lock")
	r := runCLI(t, "--root", t.TempDir(), "lock", "--app-source", mirror, "--app-version", "0.11.0", "-o", out)
	if r.code != exitOK {
		t.Fatalf("lock with default targets = %d, want 0\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "for 6 targets") {
		t.Errorf("lock stdout = %q, want the six default targets", r.stdout)
	}
	l, err := lockfile.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(resolve.DefaultTargets))
	if !slices.Equal(l.Targets, want) {
		t.Errorf("lock targets = %q, want %q", l.Targets, want)
	}
	var libsass *lockfile.Package
	for i := range l.Packages {
		if l.Packages[i].Name == "libsass" {
			libsass = &l.Packages[i]
		}
	}
	if libsass == nil || libsass.Sdist == nil || len(libsass.Wheels) == 0 ||
		!slices.Equal(libsass.SdistTargets, []string{"cp312-aarch64", "cp313-aarch64", "cp314-aarch64"}) {
		t.Fatalf("libsass = %+v, want its x86_64 wheels and its sdist marked for the aarch64 targets", libsass)
	}

	if r := runCLI(t, "lock", "--check", out); r.code != exitOK {
		t.Fatalf("lock --check of the fresh lock = %d, want 0\nstderr: %s", r.code, r.stderr)
	}
	body, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	cut := strings.Replace(string(body), `sdist-targets = ["cp312-aarch64", "cp313-aarch64", "cp314-aarch64"]`, `sdist-targets = ["cp312-aarch64", "cp314-aarch64"]`, 1)
	if cut == string(body) {
		t.Fatal("the lock has no sdist-targets line to edit")
	}
	if err := os.WriteFile(out, []byte(cut), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, "lock", "--check", out)
	if r.code == exitOK || !strings.Contains(r.stderr, `libsass 0.23.0 has no wheel for target cp313-aarch64 and its sdist is not marked for it (add "cp313-aarch64" to sdist-targets`) {
		t.Errorf("lock --check with cp313-aarch64 unmarked = %d, stderr %q; want a failure naming the target and the fix", r.code, r.stderr)
	}
}
