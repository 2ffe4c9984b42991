package install

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
)

// pycFacts reads pycs with the interpreter: the flags word and the
// co_filename of each, by path.
const pycFacts = `import json, marshal, sys
out = {}
for p in sys.argv[1:]:
    data = open(p, "rb").read()
    out[p] = [int.from_bytes(data[4:8], "little"), marshal.loads(data[16:]).co_filename]
print(json.dumps(out))
`

// TestCompilerTree compiles a tree as compileall would: every .py file,
// nothing under __pycache__, hash-based pycs that name the final path.
func TestCompilerTree(t *testing.T) {
	py := testkit.HostPython(t)
	dir := t.TempDir()
	files := map[string]string{
		"manage.py":            "import sys\n",
		"proj/__init__.py":     "",
		"proj/settings.py":     "DEBUG = False\n",
		"proj/templates/x.txt": "not python\n",
		"__pycache__/stray.py": "x = 1\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := startCompiler(context.Background(), py.Path)
	defer c.stop()
	if err := c.addTree(dir, "/opt/final/app"); err != nil {
		t.Fatal(err)
	}
	if err := c.wait(); err != nil {
		t.Fatal(err)
	}
	tag := "cpython-" + strings.ReplaceAll(py.Minor, ".", "")
	want := map[string]string{
		filepath.Join(dir, "__pycache__", "manage."+tag+".pyc"):        "/opt/final/app/manage.py",
		filepath.Join(dir, "proj/__pycache__", "__init__."+tag+".pyc"): "/opt/final/app/proj/__init__.py",
		filepath.Join(dir, "proj/__pycache__", "settings."+tag+".pyc"): "/opt/final/app/proj/settings.py",
	}
	var pycs []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".pyc") {
			pycs = append(pycs, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pycs) != len(want) {
		t.Errorf("compiled %q, want the %d pycs of the tree's sources outside __pycache__", pycs, len(want))
	}
	out, err := exec.Command(py.Path, append([]string{"-I", "-c", pycFacts}, pycs...)...).Output()
	if err != nil {
		t.Fatal(err)
	}
	var facts map[string][2]any
	if err := json.Unmarshal(out, &facts); err != nil {
		t.Fatal(err)
	}
	for p, file := range want {
		f, ok := facts[p]
		switch {
		case !ok:
			t.Errorf("no pyc %s", p)
		case f[0] != float64(1): // hash-based, unchecked
			t.Errorf("%s has flags %v, want 1 (unchecked hash)", p, f[0])
		case f[1] != file:
			t.Errorf("%s names %v, want %s", p, f[1], file)
		}
	}
}

// TestCompilerError fails on a source that does not compile, names it,
// and never blocks the files still being placed.
func TestCompilerError(t *testing.T) {
	py := testkit.HostPython(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.py")
	if err := os.WriteFile(bad, []byte("def broken(:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.py")
	if err := os.WriteFile(good, []byte("x = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := startCompiler(context.Background(), py.Path)
	defer c.stop()
	c.add(pycJob{src: bad, dfile: "lib/bad.py"})
	for range cap(c.jobs) + 100 { // more than the queue holds: it must drain
		c.add(pycJob{src: good, dfile: "lib/good.py"})
	}
	err := c.wait()
	if err == nil || !strings.Contains(err.Error(), "compile bytecode of lib/bad.py") || !strings.Contains(err.Error(), "SyntaxError") {
		t.Errorf("wait() = %v, want an error naming lib/bad.py and the SyntaxError", err)
	}

	// A tab cannot pass the line protocol.
	c = startCompiler(context.Background(), py.Path)
	defer c.stop()
	c.add(pycJob{src: good, dfile: "lib/a\tb.py"})
	if err := c.wait(); err == nil || !strings.Contains(err.Error(), "tab or newline") {
		t.Errorf("wait() after a path with a tab = %v, want an error saying so", err)
	}
}

// TestCompilerCancel reports a cancelled build as an error, so that no
// half-compiled entry is taken for a whole one.
func TestCompilerCancel(t *testing.T) {
	py := testkit.HostPython(t)
	src := filepath.Join(t.TempDir(), "x.py")
	if err := os.WriteFile(src, []byte("x = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := startCompiler(ctx, py.Path)
	defer c.stop()
	cancel()
	c.add(pycJob{src: src, dfile: "lib/x.py"})
	if err := c.wait(); !errors.Is(err, context.Canceled) {
		t.Errorf("wait() after a cancel = %v, want context.Canceled", err)
	}
}
