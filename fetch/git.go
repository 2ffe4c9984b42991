package fetch

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// IsGitRepo reports whether path is a local git repository, bare or with a
// work tree (a .git directory, or a .git file as in linked work trees).
func IsGitRepo(path string) bool {
	if isGitDir(path) {
		return true
	}
	gitPath := filepath.Join(path, ".git")
	info, err := os.Lstat(gitPath)
	switch {
	case err != nil:
		return false
	case info.IsDir():
		return isGitDir(gitPath)
	case info.Mode().IsRegular():
		data, err := os.ReadFile(gitPath)
		return err == nil && bytes.HasPrefix(data, []byte("gitdir: "))
	}
	return false
}

// isGitDir reports whether dir has the layout of a git directory.
func isGitDir(dir string) bool {
	head, err := os.Stat(filepath.Join(dir, "HEAD"))
	if err != nil || !head.Mode().IsRegular() {
		return false
	}
	for _, sub := range []string{"objects", "refs"} {
		if info, err := os.Stat(filepath.Join(dir, sub)); err != nil || !info.IsDir() {
			return false
		}
	}
	return true
}

// gitEnv is the environment for git: variables that would point git at
// another repository are dropped, prompts are off, and a partial clone does
// not fetch missing objects behind the caller's back.
func gitEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		switch name, _, _ := strings.Cut(kv, "="); name {
		case "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
			"GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GIT_TERMINAL_PROMPT=0", "GIT_NO_LAZY_FETCH=1")
}

// git runs git in dir (the current directory if empty) and returns its
// standard output.
func git(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// checkArg refuses a repository or ref that git would read as an option.
func checkArg(what, s string) error {
	if s == "" || strings.HasPrefix(s, "-") {
		return fmt.Errorf("%s %q is not valid: it must be non-empty and not start with \"-\"", what, s)
	}
	return nil
}

// Tags lists the tags of repo, a URL or a local path, as a map from tag name
// to commit id. For annotated tags the peeled commit is returned, not the
// id of the tag object.
func Tags(ctx context.Context, repo string) (map[string]string, error) {
	if err := checkArg("repository", repo); err != nil {
		return nil, fmt.Errorf("list tags: %w", err)
	}
	out, err := git(ctx, "", "ls-remote", "--tags", repo)
	if err != nil {
		return nil, fmt.Errorf("list tags of %q: %w", repo, err)
	}
	tags := parseLsRemote(out)
	return tags, nil
}

// parseLsRemote reads `git ls-remote --tags` output; a peeled "^{}" line
// wins over the tag object's line whatever their order.
func parseLsRemote(out []byte) map[string]string {
	tags := map[string]string{}
	peeled := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		oid, ref, ok := strings.Cut(strings.TrimSpace(line), "\t")
		name, isTag := strings.CutPrefix(ref, "refs/tags/")
		if !ok || !isTag {
			continue
		}
		if base, ok := strings.CutSuffix(name, "^{}"); ok {
			tags[base], peeled[base] = oid, true
		} else if !peeled[name] {
			tags[name] = oid
		}
	}
	return tags
}

// Export describes a tree written by ExportGitTree.
type Export struct {
	Commit string // the commit ref resolved to
	Tree   string // its git tree id
	// Missing lists the paths whose blob is absent from the repository
	// (a partial mirror); they are not written.
	Missing []string
	// Submodules lists the paths of gitlinks, which are not written.
	Submodules []string
}

// ExportGitTree writes the files of ref's tree in the local repository repo
// (bare or not) into dst, which must be absent or an empty directory. File
// modes and symlinks are kept. A blob absent from the repository is not
// fetched but listed in Missing, and gitlinks in Submodules: the caller
// decides whether the tree is complete enough. Paths that would leave dst or
// enter a .git directory are refused.
func ExportGitTree(ctx context.Context, repo, ref, dst string) (*Export, error) {
	exp, err := exportGitTree(ctx, repo, ref, dst)
	if err != nil {
		return nil, fmt.Errorf("export %q of %q: %w", ref, repo, err)
	}
	return exp, nil
}

func exportGitTree(ctx context.Context, repo, ref, dst string) (*Export, error) {
	if err := checkArg("ref", ref); err != nil {
		return nil, err
	}
	out, err := git(ctx, repo, "rev-parse", "--verify", "--quiet", ref+"^{commit}")
	if err != nil {
		return nil, fmt.Errorf("ref %q names no commit in the repository (want a tag, branch or commit id): %w", ref, err)
	}
	exp := &Export{Commit: strings.TrimSpace(string(out))}
	out, err = git(ctx, repo, "rev-parse", "--verify", exp.Commit+"^{tree}")
	if err != nil {
		return nil, err
	}
	exp.Tree = strings.TrimSpace(string(out))
	out, err = git(ctx, repo, "ls-tree", "-r", "-z", "--full-tree", exp.Commit)
	if err != nil {
		return nil, err
	}
	entries, err := parseLsTree(out)
	if err != nil {
		return nil, err
	}
	var blobs []treeEntry
	for _, e := range entries {
		if e.mode == "160000" {
			exp.Submodules = append(exp.Submodules, e.path)
			continue
		}
		blobs = append(blobs, e)
	}
	err = stage(dst, func(tmp string) error {
		if err := os.Mkdir(tmp, 0o755); err != nil {
			return err
		}
		missing, err := writeBlobs(ctx, repo, tmp, blobs)
		exp.Missing = missing
		return err
	})
	if err != nil {
		return nil, err
	}
	return exp, nil
}

type treeEntry struct {
	mode, oid, path string
}

// parseLsTree reads `git ls-tree -r -z` output and validates each entry.
func parseLsTree(out []byte) ([]treeEntry, error) {
	var entries []treeEntry
	for _, rec := range strings.Split(string(out), "\x00") {
		if rec == "" {
			continue
		}
		meta, path, ok := strings.Cut(rec, "\t")
		f := strings.Fields(meta)
		if !ok || len(f) != 3 {
			return nil, fmt.Errorf("git ls-tree printed %q, expected \"<mode> <type> <id>\\t<path>\"", rec)
		}
		e := treeEntry{mode: f[0], oid: f[2], path: path}
		switch e.mode {
		case "100644", "100664", "100755", "120000", "160000":
		default:
			return nil, fmt.Errorf("tree entry %q has mode %q: expected a file, symlink or submodule", path, e.mode)
		}
		if err := checkTreePath(path); err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// checkTreePath refuses paths that git itself would not check out.
func checkTreePath(path string) error {
	if path == "" || strings.HasPrefix(path, "/") {
		return fmt.Errorf("tree path %q is not relative: the repository is corrupt or hostile", path)
	}
	for _, elem := range strings.Split(path, "/") {
		switch {
		case elem == "" || elem == "." || elem == "..":
			return fmt.Errorf("tree path %q has a %q element: the repository is corrupt or hostile", path, elem)
		case strings.EqualFold(elem, ".git"):
			return fmt.Errorf("tree path %q enters a .git directory: the repository is corrupt or hostile", path)
		}
	}
	return nil
}

// maxLinkTarget bounds a symlink blob, which is read into memory.
const maxLinkTarget = 4096

// writeBlobs streams the blobs from `git cat-file --batch` into root and
// returns the paths whose blob is missing. Symlinks are made last, so no
// file is ever written through one.
func writeBlobs(ctx context.Context, repo, root string, blobs []treeEntry) (missing []string, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", "cat-file", "--batch")
	cmd.Dir = repo
	cmd.Env = gitEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start git cat-file: %w", err)
	}
	go func() {
		w := bufio.NewWriter(stdin)
		for _, b := range blobs {
			w.WriteString(b.oid + "\n")
		}
		w.Flush()
		stdin.Close()
	}()

	links := map[string]string{}
	r := bufio.NewReaderSize(stdout, 64<<10)
	for _, b := range blobs {
		size, ok, err := readBatchHeader(r, b.oid)
		if err != nil {
			cancel()
			cmd.Wait()
			return nil, fmt.Errorf("read %q: %w: %s", b.path, err, strings.TrimSpace(stderr.String()))
		}
		if !ok {
			missing = append(missing, b.path)
			continue
		}
		if b.mode == "120000" {
			if size > maxLinkTarget {
				err = fmt.Errorf("symlink %q has a %d-byte target, more than %d", b.path, size, maxLinkTarget)
			} else {
				var target []byte
				target, err = readN(r, size)
				links[b.path] = string(target)
			}
		} else {
			err = writeFile(root, b, r, size)
		}
		if err == nil {
			_, err = r.Discard(1) // the newline after each object
		}
		if err != nil {
			cancel()
			cmd.Wait()
			return nil, err
		}
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("git cat-file --batch: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	for path, target := range links {
		p, err := mkParents(root, path)
		if err != nil {
			return nil, err
		}
		if err := os.Symlink(target, p); err != nil {
			return nil, err
		}
	}
	return missing, nil
}

// readBatchHeader reads "<oid> blob <size>" or "<oid> missing".
func readBatchHeader(r *bufio.Reader, oid string) (size int64, ok bool, err error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return 0, false, fmt.Errorf("git cat-file output ended early: %w", err)
	}
	f := strings.Fields(line)
	if len(f) == 2 && f[0] == oid && f[1] == "missing" {
		return 0, false, nil
	}
	if len(f) != 3 || f[0] != oid || f[1] != "blob" {
		return 0, false, fmt.Errorf("git cat-file printed %q, expected \"%s blob <size>\"", strings.TrimSpace(line), oid)
	}
	size, err = strconv.ParseInt(f[2], 10, 64)
	if err != nil || size < 0 {
		return 0, false, fmt.Errorf("git cat-file printed size %q, expected a number", f[2])
	}
	return size, true, nil
}

func readN(r io.Reader, n int64) ([]byte, error) {
	buf := make([]byte, n)
	_, err := io.ReadFull(r, buf)
	return buf, err
}

func writeFile(root string, b treeEntry, r io.Reader, size int64) error {
	p, err := mkParents(root, b.path)
	if err != nil {
		return err
	}
	perm := os.FileMode(0o644)
	if b.mode == "100755" {
		perm = 0o755
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, r, size); err != nil {
		f.Close()
		return fmt.Errorf("write %q: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	// Set the mode exactly, whatever the umask.
	return os.Chmod(p, perm)
}

// mkParents creates the directories above the slash-separated path rel
// under root and returns the full path. It refuses to pass through anything
// that is not a real directory, such as a symlink.
func mkParents(root, rel string) (string, error) {
	elems := strings.Split(rel, "/")
	dir := root
	for _, elem := range elems[:len(elems)-1] {
		dir = filepath.Join(dir, elem)
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			continue
		}
		if !errors.Is(err, os.ErrExist) {
			return "", err
		}
		info, err := os.Lstat(dir)
		if err != nil {
			return "", err
		}
		if !info.IsDir() {
			return "", fmt.Errorf("path %q is both a file and a directory in the tree", rel)
		}
	}
	return filepath.Join(dir, elems[len(elems)-1]), nil
}
