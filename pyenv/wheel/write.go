package wheel

import (
	"github.com/bitpoll-install/bitpoll-install/workers"

	"archive/zip"
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// tracker creates files and directories and remembers each one, so that a
// failed install can remove exactly what it made and nothing else. Its
// methods may be called from several goroutines.
type tracker struct {
	mu      sync.Mutex
	files   []string
	dirs    []string
	present map[string]bool // directories known to exist
}

func newTracker() *tracker { return &tracker{present: make(map[string]bool)} }

// undo removes everything created, files first, newest first.
func (t *tracker) undo() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := len(t.files) - 1; i >= 0; i-- {
		os.Remove(t.files[i])
	}
	for i := len(t.dirs) - 1; i >= 0; i-- {
		os.Remove(t.dirs[i])
	}
}

func (t *tracker) isPresent(dir string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.present[dir]
}

func (t *tracker) addFile(p string) {
	t.mu.Lock()
	t.files = append(t.files, p)
	t.mu.Unlock()
}

// mkdirAll is os.MkdirAll that records the directories it creates and
// gives them mode 0755 whatever the umask, for reproducible trees.
func (t *tracker) mkdirAll(dir string) error {
	if t.isPresent(dir) {
		return nil
	}
	fi, err := os.Stat(dir) // follows symlinks such as a venv's lib64 -> lib
	switch {
	case err == nil && fi.IsDir():
		t.mu.Lock()
		t.present[dir] = true
		t.mu.Unlock()
		return nil
	case err == nil:
		return fmt.Errorf("create directory %q: a file of that name exists", dir)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("create directory %q: %w", dir, err)
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := t.mkdirAll(parent); err != nil {
			return err
		}
	}
	return t.mkdir(dir)
}

// mkdir creates dir, whose parent exists. A directory that is already
// there (made by a concurrent call, or a symlink to one) is taken as is
// and not recorded, so undo leaves it alone.
func (t *tracker) mkdir(dir string) error {
	err := os.Mkdir(dir, 0o755)
	if errors.Is(err, fs.ErrExist) {
		if fi, serr := os.Stat(dir); serr != nil || !fi.IsDir() {
			return fmt.Errorf("create directory %q: a file of that name exists", dir)
		}
		t.mu.Lock()
		t.present[dir] = true
		t.mu.Unlock()
		return nil
	}
	if err != nil {
		return fmt.Errorf("create directory %q: %w", dir, err)
	}
	t.mu.Lock()
	t.dirs = append(t.dirs, dir)
	t.present[dir] = true
	t.mu.Unlock()
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("create directory %q: %w", dir, err)
	}
	return nil
}

// mkdirs creates the parent directory of every path in files, with up to
// goroutines of them at once. Creating a directory costs about as much as
// placing a file, and wheels such as Django have thousands of them
// (one per locale), so they are made one depth level at a time, the
// directories of each level in parallel.
func (t *tracker) mkdirs(files []string, goroutines int) error {
	need := make(map[string]bool)
	for _, f := range files {
		// Up to a directory known to exist; the first call of an install
		// climbs to the root, where mkdir finds each one present.
		for d := filepath.Dir(f); !need[d] && !t.isPresent(d); d = filepath.Dir(d) {
			need[d] = true
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	var levels [][]string
	for d := range need {
		depth := strings.Count(d, string(filepath.Separator))
		for len(levels) <= depth {
			levels = append(levels, nil)
		}
		levels[depth] = append(levels[depth], d)
	}
	for _, level := range levels {
		sort.Strings(level)
		if err := workers.ForEach(len(level), goroutines, func(i int) error { return t.mkdir(level[i]) }); err != nil {
			return err
		}
	}
	return nil
}

// create makes dst, which must not exist yet.
func (t *tracker) create(dst string) (*os.File, error) {
	if err := t.mkdirAll(filepath.Dir(dst)); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	t.addFile(dst)
	return f, nil
}

// hashReader hashes and counts what passes through it.
type hashReader struct {
	r io.Reader
	h hash.Hash // may be nil
	n int64
}

func (r *hashReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	if r.h != nil {
		r.h.Write(p[:n])
	}
	return n, err
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// written is a file placed in the environment, with what RECORD needs.
type written struct {
	dst    string
	sha256 []byte
	size   int64
}

// writeFile copies src to the new file dst and checks it against want:
// at most want.Size bytes are read, and when want has a hash the content
// must match it. When python is set and the content starts with "#!python",
// the first line becomes the real shebang. It returns the sha256 and size
// of what was written.
func (t *tracker) writeFile(dst string, mode fs.FileMode, src io.Reader, want recordEntry, python string) (written, error) {
	w := written{dst: dst}
	var algo string
	var wantDigest []byte
	in := &hashReader{r: io.LimitReader(src, want.Size+1)}
	if want.Hash != "" {
		algo, wantDigest, _ = parseHash(want.Hash) // checked by parseRecord
		in.h = hashAlgos[algo].new()
	}
	out, err := t.create(dst)
	if err != nil {
		return w, err
	}
	defer out.Close()
	var body io.Reader = in
	var sum hash.Hash
	count := &countWriter{}
	sink := []io.Writer{out, count}
	rewrite := false
	if python != "" {
		br := bufio.NewReader(in)
		if head, _ := br.Peek(len("#!python")); string(head) == "#!python" {
			rewrite = true
			for { // drop the whole first line, however long
				if _, err := br.ReadSlice('\n'); err != bufio.ErrBufferFull {
					break
				}
			}
		}
		body = br
	}
	if algo != "sha256" || rewrite {
		sum = sha256.New()
		sink = append(sink, sum)
	}
	mw := io.MultiWriter(sink...)
	if rewrite {
		io.WriteString(mw, shebang(python))
	}
	if _, err := io.Copy(mw, body); err != nil {
		if errors.Is(err, zip.ErrFormat) || errors.Is(err, zip.ErrChecksum) {
			return w, fmt.Errorf("%w: content does not match its zip header (%v)", ErrRecord, err)
		}
		return w, fmt.Errorf("write %q: %w", dst, err)
	}
	if err := out.Chmod(mode); err != nil {
		return w, fmt.Errorf("write %q: %w", dst, err)
	}
	if err := out.Close(); err != nil {
		return w, fmt.Errorf("write %q: %w", dst, err)
	}
	switch {
	case in.n > want.Size:
		return w, fmt.Errorf("%w: has more than the %d bytes declared", ErrRecord, want.Size)
	case in.n < want.Size:
		return w, fmt.Errorf("%w: has %d bytes, RECORD says %d", ErrRecord, in.n, want.Size)
	}
	if in.h != nil {
		got := in.h.Sum(nil)
		if !bytes.Equal(got, wantDigest) {
			return w, fmt.Errorf("%w: content hashes to %s, RECORD says %s", ErrRecord, formatHash(algo, got), want.Hash)
		}
		if sum == nil {
			w.sha256 = got
		}
	}
	if sum != nil {
		w.sha256 = sum.Sum(nil)
	}
	w.size = count.n
	return w, nil
}

// writeBytes creates dst with data, for generated files.
func (t *tracker) writeBytes(dst string, mode fs.FileMode, data []byte) (written, error) {
	sum := sha256.Sum256(data)
	w := written{dst: dst, sha256: sum[:], size: int64(len(data))}
	f, err := t.create(dst)
	if err != nil {
		return w, err
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return w, fmt.Errorf("write %q: %w", dst, err)
	}
	if err := f.Chmod(mode); err != nil {
		return w, fmt.Errorf("write %q: %w", dst, err)
	}
	return w, f.Close()
}

// existsError explains a file in the way, naming the distribution that
// installed it when some RECORD in the lib directories lists it.
func existsError(member, dst string, libs ...string) error {
	for _, lib := range libs {
		records, _ := filepath.Glob(filepath.Join(lib, "*.dist-info", "RECORD"))
		for _, rec := range records {
			f, err := os.Open(rec)
			if err != nil {
				continue
			}
			entries, _ := parseRecord(io.LimitReader(f, MaxMetadataSize))
			f.Close()
			for _, e := range entries {
				if filepath.Join(lib, filepath.FromSlash(e.Path)) == dst {
					return memberErr(member, ErrExists, "would overwrite %q, installed by %q: install into a fresh environment or remove that distribution first",
						dst, filepath.Base(filepath.Dir(rec)))
				}
			}
		}
	}
	return memberErr(member, ErrExists, "would overwrite %q, which is not ours: install into a fresh environment or remove the file first", dst)
}
