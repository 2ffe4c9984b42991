package treehash

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
	"golang.org/x/tools/txtar"
)

// A case file in testdata/trees holds a tree as a txtar archive: header
// lines in its comment, then files each introduced by a "-- path --" line.
// Header lines:
//
//	git <tree id>            expected GitTree
//	nar <sri>                expected NarHash
//	exec <path>              make a file executable
//	symlink <path> <target>  create a symlink
//	dir <path>               create an (empty) directory
type treeCase struct {
	git, nar string
	build    func(t *testing.T, dir string)
}

func parseCase(t *testing.T, file string) treeCase {
	t.Helper()
	a, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var c treeCase
	files := a.Files
	var execs, dirs []string
	links := map[string]string{}
	for line := range strings.Lines(string(a.Comment)) {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case f[0] == "git" && len(f) == 2:
			c.git = f[1]
		case f[0] == "nar" && len(f) == 2:
			c.nar = f[1]
		case f[0] == "exec" && len(f) == 2:
			execs = append(execs, f[1])
		case f[0] == "dir" && len(f) == 2:
			dirs = append(dirs, f[1])
		case f[0] == "symlink" && len(f) == 3:
			links[f[1]] = f[2]
		default:
			t.Fatalf("%s: bad header line %q", file, line)
		}
	}
	c.build = func(t *testing.T, dir string) {
		for _, d := range dirs {
			mustMkdir(t, filepath.Join(dir, d))
		}
		for _, f := range files {
			p := filepath.Join(dir, f.Name)
			mustMkdir(t, filepath.Dir(p))
			if err := os.WriteFile(p, f.Data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for _, e := range execs {
			if err := os.Chmod(filepath.Join(dir, e), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for p, target := range links {
			mustMkdir(t, filepath.Dir(filepath.Join(dir, p)))
			if err := os.Symlink(target, filepath.Join(dir, p)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return c
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestCases(t *testing.T) {
	files, err := filepath.Glob("testdata/trees/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases in testdata/trees: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			c := parseCase(t, file)
			dir := t.TempDir()
			c.build(t, dir)
			if got, err := GitTree(dir); err != nil || got != c.git {
				t.Errorf("GitTree(%q) = %v, %v, want %v", file, got, err, c.git)
			}
			if got, err := NarHash(dir); err != nil || got != c.nar {
				t.Errorf("NarHash(%q) = %v, %v, want %v", file, got, err, c.nar)
			}
		})
	}
}

func TestUnsupportedType(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
		testenv.Skipf(t, "cannot create a fifo: %v", err)
	}
	for name, f := range map[string]func(string) (string, error){"GitTree": GitTree, "NarHash": NarHash} {
		got, err := f(dir)
		if err == nil || !strings.Contains(err.Error(), "only regular files, directories and symlinks") {
			t.Errorf("%s(dir with fifo) = %q, %v, want unsupported file type error", name, got, err)
		}
	}
}

func TestMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "absent")
	for name, f := range map[string]func(string) (string, error){"GitTree": GitTree, "NarHash": NarHash} {
		if got, err := f(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s(%q) = %q, %v, want not-exist error", name, dir, got, err)
		}
	}
}

func TestNestedGitDir(t *testing.T) {
	dir := t.TempDir()
	mustMkdir(t, filepath.Join(dir, "sub", ".git"))
	if err := os.WriteFile(filepath.Join(dir, "sub", ".git", "HEAD"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := GitTree(dir); err == nil || !strings.Contains(err.Error(), "submodule") {
		t.Errorf("GitTree(tree with sub/.git) = %q, %v, want nested .git error", got, err)
	}
}

// oddNames sort differently in git (directories compare as "name/") and in
// NAR (plain bytes), and include characters that need care in shells.
var oddNames = []string{
	"a", "a-b", "a.b", "a0", "a b", "A", "ü", "-dash", "tab\tname", "x=y",
	"bin", "bin.sh", "bin-x", "z", "üa", "new\nline", "back\\slash", "'q'",
}

// genTree fills dir with a random tree: files of random sizes, executable
// files, symlinks (some dangling), nested and empty directories.
func genTree(t *testing.T, r *rand.Rand, dir string, depth int) {
	n := r.Intn(7)
	for i := 0; i < n; i++ {
		name := oddNames[r.Intn(len(oddNames))]
		p := filepath.Join(dir, name)
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		switch k := r.Intn(10); {
		case k < 4:
			data := make([]byte, r.Intn(5000))
			r.Read(data)
			// git and Nix look only at the owner's execute bit.
			modes := []os.FileMode{0o644, 0o644, 0o755, 0o645, 0o744, 0o600}
			mode := modes[r.Intn(len(modes))]
			if err := os.WriteFile(p, data, mode); err != nil {
				t.Fatal(err)
			}
			// WriteFile applies the umask; set the mode exactly.
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
		case k < 6:
			targets := []string{"a", "../up", "/abs/path", "dangling target", "ü/x", name}
			if err := os.Symlink(targets[r.Intn(len(targets))], p); err != nil {
				t.Fatal(err)
			}
		default:
			mustMkdir(t, p)
			if depth < 3 {
				genTree(t, r, p, depth+1)
			}
		}
	}
}

// run runs a tool in dir with a clean git configuration and returns its
// trimmed standard output.
func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "GIT_CONFIG_NOSYSTEM=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	return strings.TrimSpace(string(out))
}

func lookTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		testenv.Skipf(t, "%s not found in PATH: this test compares with it", name)
	}
}

// gitWriteTree asks git for the tree id of dir, keeping git's own files
// outside dir.
func gitWriteTree(t *testing.T, dir string) string {
	t.Helper()
	gitDir := t.TempDir()
	run(t, dir, "git", "--git-dir="+gitDir, "init", "-q")
	run(t, dir, "git", "--git-dir="+gitDir, "--work-tree=.", "add", "-A")
	return run(t, dir, "git", "--git-dir="+gitDir, "--work-tree=.", "write-tree")
}

func nixHashPath(t *testing.T, dir string) string {
	t.Helper()
	return run(t, dir, "nix", "--extra-experimental-features", "nix-command", "hash", "path", dir)
}

func randomTrees(t *testing.T) []string {
	t.Helper()
	n := 40
	if testing.Short() {
		n = 5
	}
	var dirs []string
	for seed := 0; seed < n; seed++ {
		dir := filepath.Join(t.TempDir(), "tree")
		mustMkdir(t, dir)
		genTree(t, rand.New(rand.NewSource(int64(seed))), dir, 0)
		dirs = append(dirs, dir)
	}
	return dirs
}

func TestGitTreeMatchesGit(t *testing.T) {
	lookTool(t, "git")
	for _, dir := range randomTrees(t) {
		want := gitWriteTree(t, dir)
		if got, err := GitTree(dir); err != nil || got != want {
			t.Errorf("GitTree(%q) = %v, %v, want %v", dir, got, err, want)
		}
	}
}

func TestGitTreeSkipsTopLevelGit(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want, err := GitTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	mustMkdir(t, filepath.Join(dir, ".git", "objects"))
	if err := os.WriteFile(filepath.Join(dir, ".git", "HEAD"), []byte("ref: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := GitTree(dir); err != nil || got != want {
		t.Errorf("GitTree(tree with .git) = %v, %v, want %v", got, err, want)
	}
}

func TestNarHashMatchesNix(t *testing.T) {
	lookTool(t, "nix")
	for _, dir := range randomTrees(t) {
		want := nixHashPath(t, dir)
		if got, err := NarHash(dir); err != nil || got != want {
			t.Errorf("NarHash(%q) = %v, %v, want %v", dir, got, err, want)
		}
	}
}

func TestNarHashLargeFileMatchesNix(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 20 MiB file")
	}
	lookTool(t, "nix")
	dir := t.TempDir()
	data := bytes.Repeat([]byte("0123456789abcdef"), 20<<20/16+3)
	if err := os.WriteFile(filepath.Join(dir, "big"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, want := mustHash(t, NarHash, dir), nixHashPath(t, dir); got != want {
		t.Errorf("NarHash(%q) = %v, want %v", dir, got, want)
	}
}

func mustHash(t *testing.T, f func(string) (string, error), dir string) string {
	t.Helper()
	h, err := f(dir)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestBitpollMirror checks GitTree against the tree ids of a real release.
// BITPOLL_MIRROR names a bare git mirror of Bitpoll. The mirror may lack
// large blobs, so only subtrees whose blobs are all present are compared.
func TestBitpollMirror(t *testing.T) {
	mirror := testenv.BitpollMirror(t)
	lookTool(t, "git")
	for _, tc := range []struct{ tag, path string }{
		{"0.11.0", "bitpoll/poll"},
		{"0.10.0", "bitpoll/poll"},
		{"0.11.0", "bitpoll/base/templates"},
	} {
		want := run(t, ".", "git", "--git-dir="+mirror, "rev-parse", tc.tag+":"+tc.path)
		dir := t.TempDir()
		cmd := exec.Command("git", "--git-dir="+mirror, "archive", "--format=tar", tc.tag, tc.path)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git archive %s %s: %v", tc.tag, tc.path, err)
		}
		untar(t, bytes.NewReader(out), dir)
		sub := filepath.Join(dir, filepath.FromSlash(tc.path))
		if got, err := GitTree(sub); err != nil || got != want {
			t.Errorf("GitTree(%s:%s) = %v, %v, want %v", tc.tag, tc.path, got, err, want)
		}
	}
}

// untar extracts a trusted tar stream made by git archive.
func untar(t *testing.T, r io.Reader, dir string) {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			mustMkdir(t, p)
		case tar.TypeReg:
			mustMkdir(t, filepath.Dir(p))
			f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, os.FileMode(hdr.Mode)&0o777)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		case tar.TypeSymlink:
			mustMkdir(t, filepath.Dir(p))
			if err := os.Symlink(hdr.Linkname, p); err != nil {
				t.Fatal(err)
			}
		case tar.TypeXGlobalHeader:
		default:
			t.Fatalf("unexpected tar entry %q of type %v", hdr.Name, hdr.Typeflag)
		}
	}
}

// ExampleGitTree shows the id of a tree with one file.
func ExampleGitTree() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello\n"), 0o644)
	id, err := GitTree(dir)
	fmt.Println(id, err)
	// Output: aaa96ced2d9a1c8e72c56b253a0e2fe78393feb7 <nil>
}
