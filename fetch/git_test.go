package fetch

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
	"github.com/bitpoll-install/bitpoll-install/treehash"
)

func needGit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		testenv.Skip(t, "git not found in PATH: these tests build repositories with it")
	}
}

// run runs git in dir with a clean configuration and a fixed identity, and
// returns its trimmed output.
func run(t *testing.T, dir string, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org")
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return strings.TrimSpace(string(out))
}

// newRepo makes a repository with files, an executable, a symlink and
// nested directories, tagged "0.9" (lightweight) and "v1.0.0" (annotated),
// and a later commit on top.
func newRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	run(t, dir, "", "init", "-q", "-b", "main")
	mustWrite(t, filepath.Join(dir, "manage.py"), []byte("#!/usr/bin/env python\n"))
	if err := os.Chmod(filepath.Join(dir, "manage.py"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(dir, "bitpoll", "poll", "models.py"), []byte("class Poll: pass\n"))
	mustWrite(t, filepath.Join(dir, "odd name ü.txt"), []byte("odd\n"))
	if err := os.Symlink("bitpoll/poll/models.py", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	run(t, dir, "", "add", "-A")
	run(t, dir, "", "commit", "-q", "-m", "first")
	run(t, dir, "", "tag", "0.9")
	run(t, dir, "", "tag", "-a", "-m", "release", "v1.0.0")
	mustWrite(t, filepath.Join(dir, "later.txt"), []byte("later\n"))
	run(t, dir, "", "add", "-A")
	run(t, dir, "", "commit", "-q", "-m", "second")
	return dir
}

func TestIsGitRepo(t *testing.T) {
	needGit(t)
	repo := newRepo(t)
	bare := filepath.Join(t.TempDir(), "bare.git")
	run(t, ".", "", "clone", "-q", "--bare", repo, bare)
	linked := filepath.Join(t.TempDir(), "wt")
	run(t, repo, "", "worktree", "add", "-q", linked, "0.9")
	plain := t.TempDir()
	mustWrite(t, filepath.Join(plain, "HEAD"), []byte("x"))
	file := filepath.Join(plain, "HEAD")
	for _, tc := range []struct {
		path string
		want bool
	}{
		{repo, true}, {bare, true}, {linked, true},
		{plain, false}, {file, false}, {filepath.Join(plain, "absent"), false},
	} {
		if got := IsGitRepo(tc.path); got != tc.want {
			t.Errorf("IsGitRepo(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestTags(t *testing.T) {
	needGit(t)
	repo := newRepo(t)
	first := run(t, repo, "", "rev-parse", "0.9^{commit}")
	tagObject := run(t, repo, "", "rev-parse", "v1.0.0")
	if tagObject == first {
		t.Fatal("the annotated tag should have its own object id")
	}
	want := map[string]string{"0.9": first, "v1.0.0": first}
	bare := filepath.Join(t.TempDir(), "bare.git")
	run(t, ".", "", "clone", "-q", "--bare", repo, bare)
	for _, src := range []string{repo, bare, "file://" + bare} {
		got, err := Tags(context.Background(), src)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Tags(%q) = %v, %v, want %v", src, got, err, want)
		}
	}
}

func TestTagsErrors(t *testing.T) {
	needGit(t)
	for _, repo := range []string{"-uhack", "", filepath.Join(t.TempDir(), "absent")} {
		if got, err := Tags(context.Background(), repo); err == nil {
			t.Errorf("Tags(%q) = %v, nil, want error", repo, got)
		}
	}
}

func TestParseLsRemote(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want map[string]string
	}{
		{"aaa\trefs/tags/v1\nbbb\trefs/tags/v1^{}\n", map[string]string{"v1": "bbb"}},
		{"bbb\trefs/tags/v1^{}\naaa\trefs/tags/v1\n", map[string]string{"v1": "bbb"}},
		{"ccc\trefs/tags/0.9\nddd\trefs/heads/main\n\n", map[string]string{"0.9": "ccc"}},
		{"", map[string]string{}},
	} {
		if got := parseLsRemote([]byte(tc.out)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseLsRemote(%q) = %v, want %v", tc.out, got, tc.want)
		}
	}
}

func TestExportGitTree(t *testing.T) {
	needGit(t)
	repo := newRepo(t)
	bare := filepath.Join(t.TempDir(), "bare.git")
	run(t, ".", "", "clone", "-q", "--bare", repo, bare)
	for _, src := range []string{repo, bare} {
		dst := filepath.Join(t.TempDir(), "app")
		exp, err := ExportGitTree(context.Background(), src, "v1.0.0", dst)
		if err != nil {
			t.Fatal(err)
		}
		if want := run(t, repo, "", "rev-parse", "v1.0.0^{commit}"); exp.Commit != want {
			t.Errorf("ExportGitTree(%q).Commit = %v, want %v", src, exp.Commit, want)
		}
		if want := run(t, repo, "", "rev-parse", "v1.0.0^{tree}"); exp.Tree != want {
			t.Errorf("ExportGitTree(%q).Tree = %v, want %v", src, exp.Tree, want)
		}
		if len(exp.Missing)+len(exp.Submodules) != 0 {
			t.Errorf("ExportGitTree(%q) = missing %q, submodules %q, want none", src, exp.Missing, exp.Submodules)
		}
		if got, err := treehash.GitTree(dst); err != nil || got != exp.Tree {
			t.Errorf("GitTree(export of %q) = %v, %v, want %v", src, got, err, exp.Tree)
		}
		if target, err := os.Readlink(filepath.Join(dst, "link")); err != nil || target != "bitpoll/poll/models.py" {
			t.Errorf("link = %q, %v, want a symlink to bitpoll/poll/models.py", target, err)
		}
		if _, err := os.Stat(filepath.Join(dst, "later.txt")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("later.txt: %v, want it absent at v1.0.0", err)
		}
	}
}

func TestExportMissingBlob(t *testing.T) {
	needGit(t)
	repo := newRepo(t)
	oid := run(t, repo, "", "rev-parse", "0.9:bitpoll/poll/models.py")
	if err := os.Remove(filepath.Join(repo, ".git", "objects", oid[:2], oid[2:])); err != nil {
		t.Fatalf("remove loose object: %v", err)
	}
	dst := filepath.Join(t.TempDir(), "app")
	exp, err := ExportGitTree(context.Background(), repo, "0.9", dst)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"bitpoll/poll/models.py"}; !reflect.DeepEqual(exp.Missing, want) {
		t.Errorf("ExportGitTree(partial repo).Missing = %q, want %q", exp.Missing, want)
	}
	if _, err := os.Stat(filepath.Join(dst, "bitpoll", "poll", "models.py")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing blob's file: %v, want it not written", err)
	}
	if got, err := os.ReadFile(filepath.Join(dst, "manage.py")); err != nil || string(got) != "#!/usr/bin/env python\n" {
		t.Errorf("manage.py = %q, %v, want its content", got, err)
	}
}

func TestExportSubmodule(t *testing.T) {
	needGit(t)
	repo := newRepo(t)
	head := run(t, repo, "", "rev-parse", "HEAD")
	run(t, repo, "", "update-index", "--add", "--cacheinfo", "160000,"+head+",vendor/lib")
	run(t, repo, "", "commit", "-q", "-m", "submodule")
	dst := filepath.Join(t.TempDir(), "app")
	exp, err := ExportGitTree(context.Background(), repo, "HEAD", dst)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"vendor/lib"}; !reflect.DeepEqual(exp.Submodules, want) {
		t.Errorf("ExportGitTree(repo with gitlink).Submodules = %q, want %q", exp.Submodules, want)
	}
	if _, err := os.Lstat(filepath.Join(dst, "vendor")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("vendor: %v, want nothing written for the gitlink", err)
	}
}

// TestExportHostilePaths builds trees git's porcelain would refuse and
// checks that nothing is written for them.
func TestExportHostilePaths(t *testing.T) {
	needGit(t)
	repo := t.TempDir()
	run(t, repo, "", "init", "-q")
	blob := run(t, repo, "hi\n", "hash-object", "-w", "--stdin")
	sub := run(t, repo, "100644 blob "+blob+"\tconfig\n", "mktree")
	for _, tc := range []struct{ name, entry, want string }{
		{"dotdot", "100644 blob " + blob + "\t..\n", `".." element`},
		{"dotgit", "040000 tree " + sub + "\t.git\n", "enters a .git directory"},
		{"dotgit-case", "040000 tree " + sub + "\t.GiT\n", "enters a .git directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree := run(t, repo, tc.entry, "mktree")
			commit := run(t, repo, "", "commit-tree", "-m", "x", tree)
			out := t.TempDir()
			exp, err := ExportGitTree(context.Background(), repo, commit, filepath.Join(out, "app"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ExportGitTree(%s) = %v, %v, want error containing %q", tc.name, exp, err, tc.want)
			}
			if des, _ := os.ReadDir(out); len(des) != 0 {
				t.Errorf("ExportGitTree(%s) left %v, want nothing", tc.name, names(des))
			}
		})
	}
}

func TestExportErrors(t *testing.T) {
	needGit(t)
	repo := newRepo(t)
	full := t.TempDir()
	mustWrite(t, filepath.Join(full, "x"), nil)
	for _, tc := range []struct{ ref, dst, want string }{
		{"-x", filepath.Join(t.TempDir(), "a"), `ref "-x" is not valid`},
		{"no-such-tag", filepath.Join(t.TempDir(), "a"), "no-such-tag"},
		{"0.9", full, "not empty"},
	} {
		if _, err := ExportGitTree(context.Background(), repo, tc.ref, tc.dst); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ExportGitTree(%q, %q) = %v, want error containing %q", tc.ref, tc.dst, err, tc.want)
		}
	}
}

func TestGetGit(t *testing.T) {
	needGit(t)
	repo := newRepo(t)
	dst := filepath.Join(t.TempDir(), "app")
	if err := Get(context.Background(), "git::file://"+repo+"?ref=0.9", dst); err != nil {
		t.Fatal(err)
	}
	if !IsGitRepo(dst) {
		t.Errorf("IsGitRepo(clone) = false, want true")
	}
	want := run(t, repo, "", "rev-parse", "0.9^{tree}")
	if got, err := treehash.GitTree(dst); err != nil || got != want {
		t.Errorf("GitTree(clone at 0.9) = %v, %v, want %v", got, err, want)
	}
}

func TestGetGitRefusesSSHKey(t *testing.T) {
	needGit(t)
	repo := newRepo(t)
	err := Get(context.Background(), "git::file://"+repo+"?sshkey=AAAA", filepath.Join(t.TempDir(), "app"))
	if err == nil || !strings.Contains(err.Error(), "sshkey") {
		t.Errorf("Get(git source with sshkey) = %v, want sshkey error", err)
	}
}

// TestBitpollMirror exports a release from a real, partial mirror of
// Bitpoll named by BITPOLL_MIRROR. The mirror lacks blobs of 4 MiB and more.
func TestBitpollMirror(t *testing.T) {
	mirror := testenv.BitpollMirror(t)
	needGit(t)
	if testing.Short() {
		t.Skip("exports a whole release")
	}
	if !IsGitRepo(mirror) {
		t.Fatalf("IsGitRepo(%q) = false, want true", mirror)
	}
	tags, err := Tags(context.Background(), mirror)
	if err != nil {
		t.Fatal(err)
	}
	commit := run(t, mirror, "", "rev-parse", "0.11.0^{commit}")
	if tags["0.11.0"] != commit {
		t.Errorf("Tags(mirror)[0.11.0] = %q, want %q", tags["0.11.0"], commit)
	}
	dst := filepath.Join(t.TempDir(), "app")
	exp, err := ExportGitTree(context.Background(), mirror, commit, dst)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"bitpoll/base/static/fonts/NotoColorEmoji.ttf"}; !reflect.DeepEqual(exp.Missing, want) {
		t.Errorf("ExportGitTree(mirror, 0.11.0).Missing = %q, want %q", exp.Missing, want)
	}
	if want := run(t, mirror, "", "rev-parse", "0.11.0^{tree}"); exp.Tree != want {
		t.Errorf("ExportGitTree(mirror, 0.11.0).Tree = %v, want %v", exp.Tree, want)
	}
	for _, sub := range []string{"bitpoll/poll", "bitpoll/base/templates", "bitpoll/groups"} {
		want := run(t, mirror, "", "rev-parse", "0.11.0:"+sub)
		if got, err := treehash.GitTree(filepath.Join(dst, sub)); err != nil || got != want {
			t.Errorf("GitTree(export:%s) = %v, %v, want %v", sub, got, err, want)
		}
	}
}
