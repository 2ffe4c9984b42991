package install

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/pyenv"
	"github.com/bitpoll-install/bitpoll-install/pyenv/build"
	"github.com/bitpoll-install/bitpoll-install/pyenv/wheel"
)

// Cache folders beside the downloads; their names carry a layout version.
const (
	unpackedDir = "unpacked-v2" // <wheel key>/: the wheel's members, flat, as Unpack writes them
	pycDir      = "pyc-v1"      // <wheel key>-<python key>/: bytecode, see pycCache
	// pycIndex lists, in a pyc cache entry, where each of its files goes:
	// line n is the venv-relative path of the file named n.
	pycIndex = "index"
)

// installed is one distribution placed in the venv.
type installed struct {
	key   string   // unpacked cache name: the wheel's sha256, or built-... for an sdist
	files []string // venv-relative, slash-separated, from wheel.Result
}

// installWheel builds s first if it is an sdist, makes sure its
// unpacked copy is in the cache and links it into venv.
func (b *builder) installWheel(ctx context.Context, venv *pyenv.Venv, s lockfile.Selected, byName func(sha, name string) (string, error)) (installed, error) {
	whl, err := byName(s.File.SHA256, s.File.Name)
	if err != nil {
		return installed{}, err
	}
	key := s.File.SHA256
	if s.IsSdist {
		var buildWheels []string
		for _, br := range b.buildClosure() {
			if f, ok := br.Pick(b.target); ok {
				p, err := byName(f.File.SHA256, f.File.Name)
				if err != nil {
					return installed{}, err
				}
				buildWheels = append(buildWheels, p)
			}
		}
		built, err := build.BuildWheel(ctx, whl, s.File.SHA256, build.Options{
			Interp: b.interp, BuildWheels: buildWheels, CacheDir: b.o.Layout.CacheDir(), Target: b.target.String(),
		})
		if err != nil {
			return installed{}, fmt.Errorf("build %s %s from source: %w", s.Package.Name, s.Package.Version, err)
		}
		whl = built
		key = "built-" + key + "-" + b.target.String()
	}
	// Each wheel unpacks once into the cache; venvs hardlink from it.
	unpacked := filepath.Join(b.o.Layout.CacheDir(), unpackedDir, key)
	if _, err := os.Stat(unpacked); errors.Is(err, fs.ErrNotExist) {
		if _, err := wheel.Unpack(whl, unpacked, wheel.Options{}); err != nil {
			return installed{}, err
		}
	}
	scheme := wheel.Scheme{
		Purelib: venv.Scheme.Purelib, Platlib: venv.Scheme.Platlib, Scripts: venv.Scheme.Scripts,
		Headers: filepath.Join(venv.Scheme.Headers, s.Package.Name), Data: venv.Scheme.Data,
	}
	finalPython := filepath.Join(b.final, VenvDir, "bin", "python")
	res, err := wheel.Install(whl, scheme, wheel.Options{Python: finalPython, Installer: "bitpoll-install", Unpacked: unpacked, Link: linkOrCopy})
	if err != nil {
		return installed{}, err
	}
	return installed{key: key, files: res.Files}, nil
}

// pycCache is bytecode compiled once per wheel and interpreter and
// hardlinked into each venv, as the wheel's files are.
//
// A pyc names its source only in co_filename, which the import system
// replaces with the real source path whenever it loads a pyc from a
// __pycache__ beside its .py (importlib's _fix_co_filename). The cached
// pycs therefore carry the venv-relative path
// ("lib/python3.13/site-packages/django/__init__.py") instead of one store
// path's, and their bytes depend only on the source and the interpreter:
// deterministic, and the same in every venv. They are unchecked-hash pycs,
// so no mtime is involved either.
type pycCache struct {
	root    string // <cache>/pyc-v1
	python  string // the interpreter, which decides magic number and cache tag
	pyKey   string // short hash of the interpreter's identity
	platlib string // venv-relative, slash-separated
	env     []string
}

func (b *builder) pycCache(venv *pyenv.Venv) (*pycCache, error) {
	platlib, err := filepath.Rel(venv.Dir, venv.Scheme.Platlib)
	if err != nil {
		return nil, err
	}
	return &pycCache{
		root:    filepath.Join(b.o.Layout.CacheDir(), pycDir),
		python:  b.interp.Path,
		pyKey:   hashBytes([]byte(b.interp.ID()))[:16],
		platlib: filepath.ToSlash(platlib),
		env:     append(cleanEnv(), "PYTHONHASHSEED=0", "SOURCE_DATE_EPOCH=0"),
	}, nil
}

func (c *pycCache) dir(key string) string { return filepath.Join(c.root, key+"-"+c.pyKey) }

// sources returns the venv-relative .py files of a distribution that
// compileall over the venv's lib/ would compile; platlib is the
// venv-relative platlib directory, which is lib64/... where the
// interpreter's platlibdir says so (a symlink into lib/ in the venv).
func (c *pycCache) sources(files []string) []string {
	var out []string
	for _, f := range files {
		if (strings.HasPrefix(f, "lib/") || strings.HasPrefix(f, c.platlib+"/")) && strings.HasSuffix(f, ".py") {
			out = append(out, f)
		}
	}
	return out
}

// pycJob is one source to compile: src is read, out written, and dfile is
// the path baked into the pyc.
type pycJob struct {
	src, out, dfile string
	size            int64
	entry           *pycEntry
	n               int
}

// pycEntry is one cache entry being built aside.
type pycEntry struct {
	key, tmp string
	rels     []string // by file number: the venv-relative pyc path
}

// compileDriver reads "src\tout\tdfile" lines and writes each pyc to out,
// printing the venv-relative pyc path the import system looks for. It
// stops at the first source that does not compile, as compileall would
// fail the build.
const compileDriver = `import importlib.util, py_compile, sys
mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
for line in sys.stdin:
    src, out, dfile = line.rstrip("\n").split("\t")
    try:
        py_compile.compile(src, cfile=out, dfile=dfile, doraise=True, invalidation_mode=mode)
    except py_compile.PyCompileError as e:
        sys.exit("compile %s: %s" % (dfile, e.msg))
    print(importlib.util.cache_from_source(dfile))
`

// fill compiles the sources of every distribution whose entry is missing,
// on up to GOMAXPROCS interpreters at once, and moves each finished entry
// into the cache. Sources are read from venvDir, where they were just
// linked.
func (c *pycCache) fill(ctx context.Context, venvDir string, dists []installed) error {
	var jobs []pycJob
	var entries []*pycEntry
	defer func() {
		for _, e := range entries {
			os.RemoveAll(e.tmp)
		}
	}()
	for _, d := range dists {
		srcs := c.sources(d.files)
		if len(srcs) == 0 {
			continue
		}
		if _, err := os.Stat(c.dir(d.key)); err == nil {
			continue
		}
		if err := os.MkdirAll(c.root, 0o755); err != nil {
			return err
		}
		tmp, err := os.MkdirTemp(c.root, "."+d.key+".partial-")
		if err != nil {
			return err
		}
		e := &pycEntry{key: d.key, tmp: tmp, rels: make([]string, len(srcs))}
		entries = append(entries, e)
		for i, rel := range srcs {
			src := filepath.Join(venvDir, filepath.FromSlash(rel))
			fi, err := os.Stat(src)
			if err != nil {
				return err
			}
			jobs = append(jobs, pycJob{src: src, out: filepath.Join(tmp, strconv.Itoa(i)), dfile: rel, size: fi.Size(), entry: e, n: i})
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	// Deal the largest sources first to the least loaded shard, so the
	// interpreters finish together.
	sort.SliceStable(jobs, func(i, j int) bool { return jobs[i].size > jobs[j].size })
	shards := make([][]pycJob, min(runtime.GOMAXPROCS(0), len(jobs)))
	loads := make([]int64, len(shards))
	for _, j := range jobs {
		k := 0
		for i := range loads {
			if loads[i] < loads[k] {
				k = i
			}
		}
		shards[k] = append(shards[k], j)
		loads[k] += j.size + 4096 // a file costs something however small
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, shard := range shards {
		g.Go(func() error { return c.compile(gctx, shard) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, e := range entries {
		index := strings.Join(e.rels, "\n") + "\n"
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
	return nil
}

func isExist(err error) bool {
	return errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY)
}

// compile runs one interpreter over a shard of jobs.
func (c *pycCache) compile(ctx context.Context, shard []pycJob) error {
	var in bytes.Buffer
	for _, j := range shard {
		for _, s := range []string{j.src, j.out, j.dfile} {
			if strings.ContainsAny(s, "\t\n") {
				return fmt.Errorf("compile bytecode: path %q has a tab or newline, which the venv cannot hold", s)
			}
		}
		fmt.Fprintf(&in, "%s\t%s\t%s\n", j.src, j.out, j.dfile)
	}
	cmd := exec.CommandContext(ctx, c.python, "-I", "-S", "-c", compileDriver)
	cmd.Env = c.env
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("compile bytecode: %w\n%s", err, tail(stderr.Bytes()))
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	i := 0
	for ; sc.Scan(); i++ {
		if i >= len(shard) {
			break
		}
		shard[i].entry.rels[shard[i].n] = sc.Text()
	}
	if i != len(shard) {
		return fmt.Errorf("compile bytecode: the interpreter reported %d of %d files", i, len(shard))
	}
	return nil
}

// link places the cached bytecode of dists into venvDir.
func (c *pycCache) link(venvDir string, dists []installed) error {
	type pair struct{ src, dst string }
	var pairs []pair
	dirs := make(map[string]bool)
	for _, d := range dists {
		if len(c.sources(d.files)) == 0 {
			continue
		}
		entry := c.dir(d.key)
		index, err := os.ReadFile(filepath.Join(entry, pycIndex))
		if err != nil {
			return fmt.Errorf("read bytecode cache of %s (delete %s to rebuild it): %w", d.key, entry, err)
		}
		for i, rel := range strings.Split(strings.TrimSuffix(string(index), "\n"), "\n") {
			if !filepath.IsLocal(rel) || !strings.HasSuffix(rel, ".pyc") {
				return fmt.Errorf("bytecode cache of %s lists %q, want a venv-relative .pyc path: delete %s to rebuild it", d.key, rel, entry)
			}
			dst := filepath.Join(venvDir, filepath.FromSlash(rel))
			dirs[filepath.Dir(dst)] = true
			pairs = append(pairs, pair{filepath.Join(entry, strconv.Itoa(i)), dst})
		}
	}
	// Each __pycache__ sits beside its sources, which are in place.
	var list []string
	for d := range dirs {
		list = append(list, d)
	}
	sort.Strings(list)
	if err := parallel(len(list), func(i int) error {
		if err := os.Mkdir(list[i], 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		return os.Chmod(list[i], 0o755)
	}); err != nil {
		return fmt.Errorf("link bytecode: %w", err)
	}
	if err := parallel(len(pairs), func(i int) error { return linkOrCopy(pairs[i].src, pairs[i].dst) }); err != nil {
		return fmt.Errorf("link bytecode: %w", err)
	}
	return nil
}

// parallel calls f(0) to f(n-1) on GOMAXPROCS goroutines and returns the
// first error.
func parallel(n int, f func(i int) error) error {
	var g errgroup.Group
	var mu sync.Mutex
	next := 0
	for range min(n, runtime.GOMAXPROCS(0)) {
		g.Go(func() error {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return nil
				}
				if err := f(i); err != nil {
					return err
				}
			}
		})
	}
	return g.Wait()
}
