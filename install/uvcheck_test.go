package install

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// TestVenvMatchesUV installs the fixture lock twice, once with Build and
// once with uv from the exported pylock.toml, and wants the same
// site-packages, file for file and byte for byte, and the same launchers.
func TestVenvMatchesUV(t *testing.T) {
	testkit.NeedNetwork(t)
	uv, err := exec.LookPath("uv")
	if err != nil {
		testenv.Skip(t, "uv is not on PATH: install uv to cross-check the venv")
	}
	it := testkit.HostPython(t)
	l := testkit.LockFixture(t, testkit.Target(it))
	ctx := context.Background()

	layout := store.Layout{Root: t.TempDir()}
	res, err := Build(ctx, Options{Lock: l, Layout: layout, Python: it.Path, AppSource: testkit.FixtureApp()})
	if err != nil {
		t.Fatal(err)
	}
	pylock, err := lockfile.ExportPylock(l, res.Target)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	pylockPath := filepath.Join(work, "pylock.toml")
	if err := os.WriteFile(pylockPath, pylock, 0o644); err != nil {
		t.Fatal(err)
	}
	uvVenv := filepath.Join(work, "venv")
	cache := filepath.Join(work, "uv-cache")
	runTool(t, uv, "venv", "--quiet", "--cache-dir", cache, "--python", it.Path, uvVenv)
	runTool(t, uv, "pip", "install", "--quiet", "--cache-dir", cache, "--python", filepath.Join(uvVenv, "bin", "python"), "-r", pylockPath)

	sp := filepath.Join("lib", "python"+it.Minor, "site-packages")
	ours := treeFiles(t, filepath.Join(res.Path, VenvDir, sp))
	theirs := treeFiles(t, filepath.Join(uvVenv, sp))
	if d := diffTrees(ours, theirs); d != "" {
		t.Errorf("site-packages of Build (-) and uv (+) differ:\n%s", d)
	}
	if len(ours) == 0 {
		t.Error("Build's site-packages compared empty: the walk found no files")
	}

	ourBin, theirBin := launchers(t, filepath.Join(res.Path, VenvDir, "bin")), launchers(t, filepath.Join(uvVenv, "bin"))
	if !slices.Equal(ourBin, theirBin) {
		t.Errorf("bin/ launchers: Build has %q, uv has %q", ourBin, theirBin)
	}
	t.Logf("compared %d files in site-packages and launchers %q", len(ours), ourBin)
}

func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = cleanEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// ignoredFile reports the files an installer writes about itself (RECORD,
// INSTALLER and friends), bytecode, and the files uv's venv creation adds
// to site-packages: none of them come from the wheels.
func ignoredFile(rel string) bool {
	base := filepath.Base(rel)
	switch base {
	case "RECORD", "INSTALLER", "REQUESTED", "direct_url.json", "uv_cache.json":
		return strings.HasSuffix(filepath.Dir(rel), ".dist-info")
	case "_virtualenv.py", "_virtualenv.pth":
		return rel == base
	}
	return strings.HasSuffix(rel, ".pyc") || slices.Contains(strings.Split(rel, "/"), "__pycache__")
}

// treeFiles maps each file's slash path under root to its content; a
// symlink maps to "-> target" so it never equals a file.
func treeFiles(t *testing.T, root string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() || ignoredFile(rel) {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			out[rel] = []byte("-> " + target)
			return err
		}
		data, err := os.ReadFile(p)
		out[rel] = data
		return err
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return out
}

// diffTrees lists the paths only in a (-), only in b (+), and in both with
// different bytes (~, with sizes, hashes and the first differing offset).
func diffTrees(a, b map[string][]byte) string {
	var paths []string
	for p := range a {
		paths = append(paths, p)
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	var buf strings.Builder
	n := 0
	for _, p := range paths {
		x, inA := a[p]
		y, inB := b[p]
		var line string
		switch {
		case !inB:
			line = fmt.Sprintf("- %s (%d bytes)", p, len(x))
		case !inA:
			line = fmt.Sprintf("+ %s (%d bytes)", p, len(y))
		case !bytes.Equal(x, y):
			line = fmt.Sprintf("~ %s: %d bytes sha256 %x vs %d bytes sha256 %x, first difference at byte %d: %q vs %q",
				p, len(x), sha256.Sum256(x), len(y), sha256.Sum256(y), firstDiff(x, y), around(x, firstDiff(x, y)), around(y, firstDiff(x, y)))
		default:
			continue
		}
		if n++; n <= 100 {
			buf.WriteString(line + "\n")
		}
	}
	if n > 100 {
		fmt.Fprintf(&buf, "... and %d more\n", n-100)
	}
	return buf.String()
}

func firstDiff(x, y []byte) int {
	i := 0
	for i < len(x) && i < len(y) && x[i] == y[i] {
		i++
	}
	return i
}

// around is up to 40 bytes of b starting a little before i.
func around(b []byte, i int) string {
	lo := max(i-10, 0)
	return string(b[lo:min(lo+40, len(b))])
}

// launchers are the names in a venv's bin/ that wheels put there: the
// interpreter links and the activation scripts come from venv creation.
func launchers(t *testing.T, bin string) []string {
	t.Helper()
	entries, err := os.ReadDir(bin)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, "python") || strings.HasPrefix(n, "activate") || n == "deactivate.bat" || n == "pydoc.bat" {
			continue
		}
		names = append(names, n)
	}
	return names
}

func TestIgnoredFile(t *testing.T) {
	for _, c := range []struct {
		rel  string
		want bool
	}{
		{"django-5.2.19.dist-info/RECORD", true},
		{"django-5.2.19.dist-info/INSTALLER", true},
		{"django-5.2.19.dist-info/direct_url.json", true},
		{"django/__pycache__/apps.cpython-313.pyc", true},
		{"_virtualenv.pth", true},
		{"django/RECORD", false},
		{"pkg/_virtualenv.py", false},
		{"django-5.2.19.dist-info/METADATA", false},
		{"django/apps.py", false},
	} {
		if got := ignoredFile(c.rel); got != c.want {
			t.Errorf("ignoredFile(%q) = %v, want %v", c.rel, got, c.want)
		}
	}
}

func TestDiffTrees(t *testing.T) {
	a := map[string][]byte{"same.py": []byte("x"), "gone.py": []byte("a"), "changed.py": []byte("print(1)\n")}
	b := map[string][]byte{"same.py": []byte("x"), "new.py": []byte("bb"), "changed.py": []byte("print(2)\n")}
	got := diffTrees(a, b)
	for _, want := range []string{"- gone.py (1 bytes)", "+ new.py (2 bytes)", "~ changed.py: 9 bytes", "first difference at byte 6"} {
		if !strings.Contains(got, want) {
			t.Errorf("diffTrees(...) = %q, want it to contain %q", got, want)
		}
	}
	if strings.Contains(got, "same.py") {
		t.Errorf("diffTrees(...) = %q, want no line for the equal file same.py", got)
	}
	if d := diffTrees(a, a); d != "" {
		t.Errorf("diffTrees(a, a) = %q, want empty", d)
	}
}
