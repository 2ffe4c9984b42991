package install

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/bitpoll-install/bitpoll-install/pyenv"
	"github.com/bitpoll-install/bitpoll-install/treehash"
	"github.com/bitpoll-install/bitpoll-install/workers"
)

// Bytecode cache, beside the downloads; the folder name carries a layout
// version.
const (
	pycDir = "pyc-v2" // <wheel key>-<python key>/: bytecode, see pycCache
	// pycIndex lists, in a pyc cache entry, each of its files: line n is
	// "<sha256 hex> <venv-relative path>" of the file named n, the hash
	// taken when the entry was made.
	pycIndex = "index"
)

// compiler turns Python sources into bytecode on up to GOMAXPROCS
// interpreters while the build goes on: the app's sources are queued as
// soon as the app is fetched, and each wheel's as its files are placed,
// so compiling overlaps unpacking instead of following it.
type compiler struct {
	python string
	env    []string
	jobs   chan pycJob
	g      *errgroup.Group
	cancel context.CancelFunc
	closed bool
	done   atomic.Int64 // sources compiled
}

// pycJob is one source to compile: src is read, out written (beside src
// when empty), and dfile is the path baked into the pyc. A job of a pyc
// cache entry records the venv-relative pyc path as file n of entry.
type pycJob struct {
	src, out, dfile string
	entry           *pycEntry
	n               int
}

// compileDriver reads "src\tout\tdfile" lines and answers each with the
// pyc path the import system looks for beside dfile, or "!" and the
// error. Bytecode is deterministic: unchecked-hash pycs, no mtime. The
// cycle collector is off: compiling makes many objects and no cycles
// worth collecting in a short-lived process.
const compileDriver = `import gc, importlib.util, py_compile, sys
gc.disable()
mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
for line in iter(sys.stdin.readline, ""):
    src, out, dfile = line.rstrip("\n").split("\t")
    try:
        py_compile.compile(src, cfile=out or None, dfile=dfile, doraise=True, invalidation_mode=mode)
    except py_compile.PyCompileError as e:
        print("!" + e.msg.replace("\n", " "), flush=True)
        continue
    print(importlib.util.cache_from_source(dfile), flush=True)
`

func startCompiler(ctx context.Context, python string) *compiler {
	ctx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(ctx)
	c := &compiler{
		python: python,
		env:    append(cleanEnv(), "PYTHONHASHSEED=0", "SOURCE_DATE_EPOCH=0"),
		// Deep enough that placing files never waits for the compiler.
		jobs:   make(chan pycJob, 1<<15),
		g:      g,
		cancel: cancel,
	}
	for range runtime.GOMAXPROCS(0) {
		g.Go(func() error { return c.work(gctx) })
	}
	return c
}

// add queues a job; it may be called from several goroutines, but not
// after wait.
func (c *compiler) add(j pycJob) { c.jobs <- j }

// wait returns once every queued source is compiled, with the first
// error.
func (c *compiler) wait() error {
	if !c.closed {
		c.closed = true
		close(c.jobs)
	}
	return c.g.Wait()
}

// stop ends the interpreters without waiting for the queue, after a
// failed build.
func (c *compiler) stop() {
	c.cancel()
	_ = c.wait()
}

// work runs one interpreter, started at the first job, until the queue
// is closed. After an error it only drains the queue, so that add never
// blocks.
func (c *compiler) work(ctx context.Context) (err error) {
	var p *compileProc
	defer func() {
		if p != nil {
			if cerr := p.close(); err == nil {
				err = cerr
			}
		}
	}()
	for j := range c.jobs {
		if err == nil {
			err = ctx.Err() // a cancelled build must not look compiled
		}
		if err != nil {
			continue
		}
		if p == nil {
			if p, err = c.start(ctx); err != nil {
				continue
			}
		}
		if err = p.compile(j); err != nil {
			p = nil
			continue
		}
		c.done.Add(1)
	}
	return err
}

type compileProc struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	stderr strings.Builder
}

func (c *compiler) start(ctx context.Context) (*compileProc, error) {
	cmd := exec.CommandContext(ctx, c.python, "-I", "-S", "-c", compileDriver)
	cmd.Env = c.env
	p := &compileProc{cmd: cmd}
	cmd.Stderr = &p.stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("compile bytecode: %w", err)
	}
	p.in, p.out = in, bufio.NewReader(out)
	return p, nil
}

// compile hands one job to the interpreter and reads its answer; on an
// error the interpreter is ended.
func (p *compileProc) compile(j pycJob) error {
	for _, s := range []string{j.src, j.out, j.dfile} {
		if strings.ContainsAny(s, "\t\n") {
			p.close()
			return fmt.Errorf("compile bytecode: path %q has a tab or newline, which the venv cannot hold", s)
		}
	}
	line, err := "", error(nil)
	if _, err = fmt.Fprintf(p.in, "%s\t%s\t%s\n", j.src, j.out, j.dfile); err == nil {
		line, err = p.out.ReadString('\n')
	}
	if err != nil {
		cerr := p.close()
		return fmt.Errorf("compile bytecode of %s: %w (%v)", j.dfile, err, cerr)
	}
	line = strings.TrimSuffix(line, "\n")
	if msg, ok := strings.CutPrefix(line, "!"); ok {
		p.close()
		return fmt.Errorf("compile bytecode of %s: %s", j.dfile, msg)
	}
	if j.entry != nil {
		j.entry.set(j.n, line)
	}
	return nil
}

func (p *compileProc) close() error {
	p.in.Close()
	if err := p.cmd.Wait(); err != nil {
		return fmt.Errorf("compile bytecode: %w\n%s", err, tail([]byte(p.stderr.String())))
	}
	return nil
}

// addTree queues every .py file under dir, as compileall would find
// them, with dfile the same file under final.
func (c *compiler) addTree(dir, final string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && d.Name() == "__pycache__":
			return filepath.SkipDir
		case !d.Type().IsRegular() || !strings.HasSuffix(d.Name(), ".py"):
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		c.add(pycJob{src: p, dfile: filepath.Join(final, rel)})
		return nil
	})
}

// pycCache is bytecode compiled once per wheel and interpreter and
// copied into each venv, as the wheel's files are.
//
// A pyc names its source only in co_filename, which the import system
// replaces with the real source path whenever it loads a pyc from a
// __pycache__ beside its .py (importlib's _fix_co_filename). The cached
// pycs therefore carry the venv-relative path
// ("lib/python3.13/site-packages/django/__init__.py") instead of one store
// path's, and their bytes depend only on the source and the interpreter:
// deterministic, and the same in every venv. They are unchecked-hash pycs,
// so no mtime is involved either; and so Python would run a changed pyc
// beside an unchanged source. Each file is therefore hashed when its
// entry is made, and copied into a venv (never linked) with that hash
// checked on the way: a damaged entry is removed and compiled again, and
// no store path shares an inode with the cache.
type pycCache struct {
	root    string // <cache>/pyc-v1
	pyKey   string // short hash of the interpreter's identity
	platlib string // venv-relative, slash-separated
	comp    *compiler

	mu      sync.Mutex
	entries []*pycEntry // being built aside
	damage  []string    // the damaged entries link found, for the report
}

// pycEntry is one cache entry being built aside.
type pycEntry struct {
	key, tmp string
	mu       sync.Mutex
	rels     []string // by file number: the venv-relative pyc path
}

func (b *builder) pycCache(venv *pyenv.Venv, comp *compiler) (*pycCache, error) {
	platlib, err := filepath.Rel(venv.Dir, venv.Scheme.Platlib)
	if err != nil {
		return nil, err
	}
	return &pycCache{
		root:    filepath.Join(b.o.Layout.CacheDir(), pycDir),
		pyKey:   hashBytes([]byte(b.interp.ID()))[:16],
		platlib: filepath.ToSlash(platlib),
		comp:    comp,
	}, nil
}

func (c *pycCache) dir(key string) string { return filepath.Join(c.root, key+"-"+c.pyKey) }

// isSource reports whether a venv-relative file is one that compileall
// over the venv's lib/ would compile; platlib is lib64/... where the
// interpreter's platlibdir says so (a symlink into lib/ in the venv).
func (c *pycCache) isSource(rel string) bool {
	return (strings.HasPrefix(rel, "lib/") || strings.HasPrefix(rel, c.platlib+"/")) && strings.HasSuffix(rel, ".py")
}

func (c *pycCache) hasSources(files []string) bool {
	for _, f := range files {
		if c.isSource(f) {
			return true
		}
	}
	return false
}

// open starts the entry of a distribution, or returns nil when the cache
// has it.
func (c *pycCache) open(key string) (*pycEntry, error) {
	if _, err := os.Stat(c.dir(key)); err == nil {
		return nil, nil
	}
	if err := os.MkdirAll(c.root, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(c.root, "."+key+".partial-")
	if err != nil {
		return nil, err
	}
	e := &pycEntry{key: key, tmp: tmp}
	c.mu.Lock()
	c.entries = append(c.entries, e)
	c.mu.Unlock()
	return e, nil
}

// placed is a wheel.Options.Placed that queues each source of the
// distribution for entry as it lands in venvDir.
func (c *pycCache) placed(e *pycEntry, venvDir string) func(string) {
	return func(p string) {
		rel, err := filepath.Rel(venvDir, p)
		if err != nil || !c.isSource(filepath.ToSlash(rel)) {
			return
		}
		n := e.add()
		c.comp.add(pycJob{src: p, out: filepath.Join(e.tmp, strconv.Itoa(n)), dfile: filepath.ToSlash(rel), entry: e, n: n})
	}
}

func (e *pycEntry) add() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rels = append(e.rels, "")
	return len(e.rels) - 1
}

func (e *pycEntry) set(n int, rel string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rels[n] = rel
}

// finish moves each compiled entry into the cache; call it after the
// compiler's wait.
func (c *pycCache) finish() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		if len(e.rels) == 0 { // no sources: nothing to cache
			continue
		}
		if i := slices.Index(e.rels, ""); i >= 0 {
			return fmt.Errorf("store bytecode of %s: file %d was never compiled", e.key, i)
		}
		lines := make([]string, len(e.rels))
		if err := workers.ForEach(len(e.rels), runtime.GOMAXPROCS(0), func(n int) error {
			sum, _, err := treehash.FileSHA256(filepath.Join(e.tmp, strconv.Itoa(n)))
			if err != nil {
				return fmt.Errorf("store bytecode of %s: %w", e.key, err)
			}
			lines[n] = sum + " " + e.rels[n]
			return nil
		}); err != nil {
			return err
		}
		index := strings.Join(lines, "\n") + "\n"
		if err := os.WriteFile(filepath.Join(e.tmp, pycIndex), []byte(index), 0o444); err != nil {
			return err
		}
		if err := os.Chmod(e.tmp, 0o755); err != nil {
			return err
		}
		// Another build may have got there first; its copy is as good.
		if err := os.Rename(e.tmp, c.dir(e.key)); err != nil && !isExist(err) {
			return fmt.Errorf("store bytecode of %s: %w", e.key, err)
		}
	}
	c.entries = nil
	return nil
}

// cleanup removes what finish did not move into the cache.
func (c *pycCache) cleanup() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		os.RemoveAll(e.tmp)
	}
}

func isExist(err error) bool {
	return errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY)
}

// link copies the cached bytecode of dists into venvDir, checking each
// file against the hash its entry recorded, and returns how many files it
// placed. An entry that fails the check (a file changed or missing, an
// index that does not parse) is removed from the cache, the files
// already copied from it are removed from the venv, and its distribution
// is returned in damaged, for the caller to compile again.
func (c *pycCache) link(venvDir string, dists []installed) (n int, damaged []installed, err error) {
	type pair struct {
		src, dst, sum string
		dist          int
	}
	var pairs []pair
	dirs := make(map[string]bool)
	bad := make([]error, len(dists))
	for di, d := range dists {
		if !c.hasSources(d.files) {
			continue
		}
		entry := c.dir(d.key)
		index, err := os.ReadFile(filepath.Join(entry, pycIndex))
		if err != nil {
			bad[di] = err
			continue
		}
		var mine []pair
		for i, line := range strings.Split(strings.TrimSuffix(string(index), "\n"), "\n") {
			sum, rel, _ := strings.Cut(line, " ")
			if len(sum) != 64 || !filepath.IsLocal(rel) || !strings.HasSuffix(rel, ".pyc") {
				bad[di] = fmt.Errorf("index line %d is %q, want a sha256 and a venv-relative .pyc path", i+1, line)
				mine = nil
				break
			}
			mine = append(mine, pair{filepath.Join(entry, strconv.Itoa(i)), filepath.Join(venvDir, filepath.FromSlash(rel)), sum, di})
		}
		for _, p := range mine {
			dirs[filepath.Dir(p.dst)] = true
		}
		pairs = append(pairs, mine...)
	}
	// Each __pycache__ sits beside its sources, which are in place.
	var list []string
	for d := range dirs {
		list = append(list, d)
	}
	sort.Strings(list)
	if err := workers.ForEach(len(list), runtime.GOMAXPROCS(0), func(i int) error {
		if err := os.Mkdir(list[i], 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		return os.Chmod(list[i], 0o755)
	}); err != nil {
		return 0, nil, fmt.Errorf("link bytecode: %w", err)
	}
	var mu sync.Mutex
	if err := workers.ForEach(len(pairs), runtime.GOMAXPROCS(0), func(i int) error {
		p := pairs[i]
		err := copyVerified(p.src, p.dst, p.sum)
		var de *damageError
		if errors.As(err, &de) {
			mu.Lock()
			if bad[p.dist] == nil {
				bad[p.dist] = err
			}
			mu.Unlock()
			return nil
		}
		return err
	}); err != nil {
		return 0, nil, fmt.Errorf("link bytecode: %w", err)
	}
	for _, p := range pairs {
		if bad[p.dist] == nil {
			n++
		} else if err := os.Remove(p.dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, nil, fmt.Errorf("link bytecode: %w", err)
		}
	}
	for di, err := range bad {
		if err == nil {
			continue
		}
		if err := removeCacheEntry(c.dir(dists[di].key)); err != nil {
			return 0, nil, err
		}
		damaged = append(damaged, dists[di])
		c.damage = append(c.damage, fmt.Sprintf("%s is damaged (%v)", c.dir(dists[di].key), err))
	}
	return n, damaged, nil
}

// damageError is a cache file whose content is not what was recorded.
type damageError struct {
	path string
	why  string
}

func (e *damageError) Error() string { return "file " + filepath.Base(e.path) + " " + e.why }

// copyVerified copies the cache file src to the new file dst, made
// read-only as the store seals it, and checks on the way that its
// content hashes to wantHex. A file that does not, or is missing, is a
// *damageError, and dst is then removed.
func copyVerified(src, dst, wantHex string) (err error) {
	in, err := os.Open(src)
	if errors.Is(err, fs.ErrNotExist) {
		return &damageError{src, "is missing"}
	}
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(dst)
		}
	}()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(out, h), in); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != wantHex {
		return &damageError{src, fmt.Sprintf("hashes to sha256 %s, the cache recorded %s", got, wantHex)}
	}
	return nil
}
