package pyenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
	"golang.org/x/tools/txtar"
)

// listTree describes dir as sorted lines "d path", "f path" and
// "l path -> target", paths relative to dir; skip drops entries.
func listTree(t *testing.T, dir string, skip func(rel string) bool) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if skip != nil && skip(rel) {
			return nil
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "l %s -> %s\n", rel, target)
		case d.IsDir():
			fmt.Fprintf(&b, "d %s\n", rel)
		default:
			fmt.Fprintf(&b, "f %s\n", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// readCase splits a testdata case into its "key: value" header and its
// "-- name --" sections. Lines starting with # are comments.
func readCase(t *testing.T, file string) (map[string]string, map[string]string) {
	t.Helper()
	a, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	header, sections := map[string]string{}, map[string]string{}
	for _, f := range a.Files {
		sections[f.Name] = string(f.Data)
	}
	for line := range strings.Lines(string(a.Comment)) {
		switch {
		case strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "":
		default:
			k, v, ok := strings.Cut(strings.TrimSpace(line), ": ")
			if !ok {
				t.Fatalf("%s: header line %q is not \"key: value\"", file, line)
			}
			header[k] = v
		}
	}
	return header, sections
}

func TestCreateVenvLayout(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "venv", "*.txt"))
	if len(files) == 0 {
		t.Fatal("no cases in testdata/venv")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			h, want := readCase(t, file)
			bits, _ := strconv.Atoi(h["bits"])
			it := &Interpreter{
				Path: h["path"], RealPath: h["real"], BaseExecutable: h["path"],
				Implementation: "cpython", Version: h["version"],
				Minor: versionRE.FindString(h["version"])[:4], Arch: "x86_64",
				PointerBits: bits, PlatLibDir: h["platlibdir"],
				Prefix: "/opt", BasePrefix: "/opt",
			}
			dir := filepath.Join(t.TempDir(), "venv")
			v, err := CreateVenv(dir, it)
			if err != nil {
				t.Fatal(err)
			}
			if got := listTree(t, dir, nil); got != want["tree"] {
				t.Errorf("CreateVenv(%q) tree:\n%s\nwant:\n%s", file, got, want["tree"])
			}
			cfg, err := os.ReadFile(filepath.Join(dir, "pyvenv.cfg"))
			if err != nil {
				t.Fatal(err)
			}
			if got, w := string(cfg), strings.ReplaceAll(want["pyvenv.cfg"], "$VENV", dir); got != w {
				t.Errorf("CreateVenv(%q) pyvenv.cfg:\n%s\nwant:\n%s", file, got, w)
			}
			s := v.Scheme
			got := fmt.Sprintf("purelib = %s\nplatlib = %s\nscripts = %s\nheaders = %s\ndata = %s\n", s.Purelib, s.Platlib, s.Scripts, s.Headers, s.Data)
			if w := strings.ReplaceAll(want["scheme"], "$VENV", dir); got != w {
				t.Errorf("CreateVenv(%q) scheme:\n%s\nwant:\n%s", file, got, w)
			}
			if v.Python != filepath.Join(dir, "bin", "python") || v.Dir != dir {
				t.Errorf("CreateVenv(%q) = Dir %q, Python %q, want %q and its bin/python", file, v.Dir, v.Python, dir)
			}
		})
	}
}

func noPartials(t *testing.T, parent string) {
	t.Helper()
	ents, err := os.ReadDir(parent)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), ".partial-") {
			t.Errorf("%s left behind in %s", e.Name(), parent)
		}
	}
}

func TestCreateVenvRefuses(t *testing.T) {
	good := &Interpreter{Path: "/opt/py/bin/python3", RealPath: "/opt/py/bin/python3.13", BaseExecutable: "/opt/py/bin/python3",
		Implementation: "cpython", Version: "3.13.1", Minor: "3.13", PointerBits: 64}
	parent := t.TempDir()
	empty := filepath.Join(parent, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(parent, "file")
	if err := os.WriteFile(file, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(*Interpreter)) *Interpreter { c := *good; f(&c); return &c }
	tests := []struct {
		name string
		dir  string
		it   *Interpreter
		want string
	}{
		{"empty dir", empty, good, "already exists"},
		{"file", file, good, "already exists"},
		{"newline in dir", filepath.Join(parent, "a\nb"), good, "line break"},
		{"newline in interpreter", filepath.Join(parent, "v1"), edit(func(i *Interpreter) { i.Path = "/opt/py\n/python3" }), "line break"},
		{"relative interpreter", filepath.Join(parent, "v2"), edit(func(i *Interpreter) { i.Path = "python3" }), "must be absolute"},
		{"bad minor", filepath.Join(parent, "v3"), edit(func(i *Interpreter) { i.Minor = "3.13/../.." }), "minor version"},
		{"bad version", filepath.Join(parent, "v4"), edit(func(i *Interpreter) { i.Version = "unknown" }), "X.Y.Z"},
		{"no interpreter", filepath.Join(parent, "v5"), nil, "no interpreter"},
		{"missing parent", filepath.Join(parent, "missing", "v"), good, "no such file"},
	}
	for _, tt := range tests {
		_, err := CreateVenv(tt.dir, tt.it)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.dir)) {
			t.Errorf("CreateVenv(%s) error = %v, want one naming the dir and %q", tt.name, err, tt.want)
		}
		if !strings.HasPrefix(tt.name, "empty") && tt.dir != file {
			if _, err := os.Lstat(tt.dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("CreateVenv(%s) left %q behind", tt.name, tt.dir)
			}
		}
		noPartials(t, filepath.Dir(tt.dir))
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Errorf("CreateVenv over an empty dir wrote into it: %v", ents)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Errorf("CreateVenv over a file changed it to %q", b)
	}
}

// hostInterpreters are the real Pythons to build venvs for: python3 on
// PATH, and unless -short, each CPython 3.11 to 3.14 that Find sees.
func hostInterpreters(t *testing.T) []*Interpreter {
	t.Helper()
	ctx := context.Background()
	p := NewProber()
	var out []*Interpreter
	seen := map[string]bool{}
	add := func(it *Interpreter) {
		if !seen[it.Path] {
			seen[it.Path] = true
			out = append(out, it)
		}
	}
	if path, err := exec.LookPath("python3"); err == nil {
		it, err := p.Probe(ctx, path)
		if err != nil {
			t.Fatalf("python3 on PATH: %v", err)
		}
		add(it)
	}
	if !testing.Short() {
		for _, minor := range []string{"3.11", "3.12", "3.13", "3.14"} {
			if it, err := Find(ctx, []Want{{minor, ""}}, FindOptions{Prober: p}); err == nil {
				add(it)
			}
		}
	}
	if len(out) == 0 {
		testenv.Skip(t, "no python3 on this host")
	}
	return out
}

func TestCreateVenvHost(t *testing.T) {
	for _, it := range hostInterpreters(t) {
		t.Run(it.Version, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "venv")
			v, err := CreateVenv(dir, it)
			if err != nil {
				t.Fatal(err)
			}
			noPartials(t, root)

			// The venv is live and isolated: its prefix is the venv, its
			// site-packages are all inside it, and sysconfig agrees with
			// the scheme. No pip is involved.
			script := `import sys, site, sysconfig
p = sysconfig.get_paths()
print(sys.prefix != sys.base_prefix)
print(sys.prefix)
print(all(d.startswith(sys.prefix + "/") for d in site.getsitepackages()))
print(p["purelib"]); print(p["platlib"]); print(p["scripts"])`
			out, err := exec.Command(v.Python, "-I", "-c", script).CombinedOutput()
			if err != nil {
				t.Fatalf("run %s: %v\n%s", v.Python, err, out)
			}
			real, _ := filepath.EvalSymlinks(dir)
			rs := func(p string) string { r, _ := filepath.EvalSymlinks(p); return r }
			want := strings.Join([]string{"True", real, "True", rs(v.Scheme.Purelib), rs(v.Scheme.Platlib), rs(v.Scheme.Scripts)}, "\n") + "\n"
			got := string(out)
			// sysconfig reports through the venv's own prefix; resolve it
			// like ours so that a symlinked temp dir compares equal.
			got = strings.ReplaceAll(got, dir, real)
			if got != want {
				t.Errorf("%s -c <identity>:\n%s\nwant:\n%s", v.Python, got, want)
			}

			// Same files, links and pyvenv.cfg as python -m venv.
			ref := filepath.Join(root, "ref")
			if out, err := exec.Command(it.Path, "-m", "venv", "--without-pip", ref).CombinedOutput(); err != nil {
				testenv.Skipf(t, "%s -m venv does not work here (%v): %s", it.Path, err, out)
			}
			activate := func(rel string) bool {
				b := filepath.Base(rel)
				return filepath.Dir(rel) == "bin" && (strings.HasPrefix(b, "activate") || b == "Activate.ps1")
			}
			if g, w := listTree(t, dir, nil), listTree(t, ref, activate); g != w {
				t.Errorf("CreateVenv tree:\n%s\npython -m venv tree:\n%s", g, w)
			}
			for _, name := range []string{"pyvenv.cfg", ".gitignore"} {
				g, errG := os.ReadFile(filepath.Join(dir, name))
				w, errW := os.ReadFile(filepath.Join(ref, name))
				w = bytes.ReplaceAll(w, []byte(ref), []byte(dir))
				if (errG == nil) != (errW == nil) || !bytes.Equal(g, w) {
					t.Errorf("CreateVenv %s:\n%s\npython -m venv %s:\n%s", name, g, name, w)
				}
			}
		})
	}
}
