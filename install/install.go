// Package install turns a lock into a store path: the verified app tree,
// a virtualenv of the locked wheels, compiled bytecode, collected static
// files and compiled messages, built aside and renamed into the store.
//
// It only composes the packages beside it: pyenv finds the interpreter and
// makes the venv, pyenv/wheel installs wheels, pyenv/build builds sdists,
// fetch gets the source and the wheels, store owns paths and generations,
// and shim is the settings file Django reads.
package install

import (
	"github.com/bitpoll-install/bitpoll-install/layout"

	"github.com/bitpoll-install/bitpoll-install/safearchive"

	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bitpoll-install/bitpoll-install/fetch"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/progress"
	"github.com/bitpoll-install/bitpoll-install/pyenv"
	"github.com/bitpoll-install/bitpoll-install/pyspec/wheeltag"
	"github.com/bitpoll-install/bitpoll-install/shim"
	"github.com/bitpoll-install/bitpoll-install/standalone"
	"github.com/bitpoll-install/bitpoll-install/store"
	"github.com/bitpoll-install/bitpoll-install/treehash"
)

// Options are the inputs of one build.
type Options struct {
	Lock   *lockfile.Lock
	Layout store.Layout
	// Python is an explicit interpreter (--python PATH); PythonStandalone
	// uses the lock's pinned standalone interpreter; empty or PythonAuto
	// searches the host for one matching a lock target, and uses the
	// lock's pinned one when none fits.
	Python string
	// HTTPClient fetches the standalone interpreter; nil means the
	// default client (the system's roots, and SSL_CERT_FILE).
	HTTPClient *http.Client
	// AppSource is a local mirror or tree of the app; empty fetches the
	// lock's URL. Either way its content must hash to the lock's tree.
	AppSource string
	// OnlyBinary refuses sdist entries instead of building them.
	OnlyBinary bool
	// VenvOnly builds the locked environment without the app, for `dev`,
	// which runs a live checkout against it.
	VenvOnly bool
	// Locked says the caller holds the store's lock for a longer
	// transaction; Build then takes none itself.
	Locked   bool
	Progress progress.Reporter
	// Hooks sees each build phase and the store's; tests use it to kill
	// the process at exact points. Zero in production.
	Hooks store.Hooks
	// CheckApp, when set, checks the verified app tree against the lock
	// before anything else is built (that the lock covers the tree's own
	// requirements file; the command line passes one that reads it).
	CheckApp func(appDir string) error
	// Unpack bounds what each archive (the app source, an sdist, a wheel)
	// may unpack to; zero means safearchive's defaults.
	Unpack safearchive.Limits
}

// The --python values that name no path.
const (
	PythonAuto       = "auto"
	PythonStandalone = "standalone"
)

// Result is a built (or already present) store path.
type Result struct {
	Path   string // the store path
	Built  bool   // false when the store already had it
	Interp *pyenv.Interpreter
	// Standalone is the lock's pinned interpreter in the store, when the
	// build runs on it; nil for a host Python.
	Standalone *standalone.Installed
	Target     wheeltag.Target
	Project    string // the Django project package inside the app ("bitpoll")
	// Packages is how many packages were installed into the venv: 0
	// when the store already had the path.
	Packages int
}

// The phases of a build, in order. Options.Hooks.At is called as each
// begins, with the .partial directory; the store's own phases follow.
const (
	PhaseFetchApp   store.Phase = "fetch-app"
	PhaseFetchFiles store.Phase = "fetch-files"
	PhaseVenv       store.Phase = "venv"
	PhaseWheels     store.Phase = "install-wheels"
	PhaseCompile    store.Phase = "compile"
	PhasePrepareApp store.Phase = "prepare-app"
	PhaseManifest   store.Phase = "manifest"
)

// Paths inside a store path.
const (
	AppDir    = layout.AppDir
	VenvDir   = layout.VenvDir
	StaticDir = layout.StaticDir
	Manifest  = "bitpoll-store.json"
)

// Build makes sure the store holds the lock's environment for the
// interpreter found, and returns its path.
func Build(ctx context.Context, o Options) (*Result, error) {
	if o.Progress == nil {
		o.Progress = progress.Nop{}
	}
	// Before anything is made, and whether or not the store has the path
	// already: a mistyped path is refused at once.
	if err := CheckAppSource(o.AppSource); err != nil {
		return nil, err
	}
	l := o.Lock
	var unlocks []func() error
	targets, err := l.ParsedTargets()
	if err != nil {
		return nil, err
	}
	var wants []pyenv.Want
	for _, t := range targets {
		wants = append(wants, pyenv.Want{Version: fmt.Sprintf("3.%d", t.Minor), Arch: t.Arch})
	}
	// The store is opened and locked when first needed: a refusal before
	// that leaves nothing behind.
	var st *store.Store
	openStore := func() error {
		if st != nil {
			return nil
		}
		s, err := store.Open(o.Layout)
		if err != nil {
			return err
		}
		s.Hooks = o.Hooks
		if !o.Locked {
			unlock, err := s.Lock(ctx)
			if err != nil {
				return err
			}
			unlocks = append(unlocks, unlock)
		}
		st = s
		return nil
	}
	defer func() {
		for _, u := range unlocks {
			_ = u()
		}
	}()
	interp, pinned, err := findInterpreter(ctx, o, l, targets, wants)
	if err != nil {
		return nil, err
	}
	var installed *standalone.Installed
	if pinned != nil {
		if err := openStore(); err != nil {
			return nil, err
		}
		installed, err = standalone.Ensure(ctx, *pinned, standalone.Options{
			Store: st, CacheDir: o.Layout.CacheDir(), HTTPClient: o.HTTPClient, Unpack: o.Unpack, Progress: o.Progress,
		})
		if err != nil {
			return nil, err
		}
		if installed.Built {
			o.Progress.Log(fmt.Sprintf("installed %s at %s", pinned, installed.Path))
		}
		if interp, err = pyenv.Find(ctx, wants, pyenv.FindOptions{Explicit: installed.Python}); err != nil {
			return nil, fmt.Errorf("check the lock's pinned interpreter: %w", err)
		}
	}
	var target wheeltag.Target
	for _, t := range targets {
		if fmt.Sprintf("3.%d", t.Minor) == interp.Minor && t.Arch == interp.Arch {
			target = t
		}
	}
	if interp.Glibc != "" {
		if g, err := wheeltag.ParseGlibc(interp.Glibc); err == nil && lessGlibc(g, target.Glibc) {
			return nil, fmt.Errorf("%s runs on glibc %s, but the lock's wheels need glibc %s or newer: use a newer system or re-lock with --glibc %s",
				interp, interp.Glibc, target.Glibc, interp.Glibc)
		}
	}
	sel, err := l.ForTarget(target)
	if err != nil {
		return nil, err
	}
	for _, s := range sel {
		if s.IsSdist && o.OnlyBinary {
			return nil, fmt.Errorf("%s %s is locked as an sdist and --only-binary refuses building it: drop --only-binary or re-lock with a version that has a wheel for %s",
				s.Package.Name, s.Package.Version, target)
		}
	}
	if err := openStore(); err != nil {
		return nil, err
	}
	// Builds hold the lock, so nothing else is filling the caches now.
	if n := SweepLeftovers(o.Layout); n > 0 {
		o.Progress.Log(fmt.Sprintf("removed %d leftovers of interrupted runs or older cache layouts", n))
	}

	name := l.App.Name
	msgfmt := msgfmtID(ctx)
	key := storeKey(l, sel, interp, msgfmt)
	if pinned != nil {
		key = store.Key("standalone", pinned.SHA256, key)
	}
	if o.VenvOnly {
		name += "-venv"
		key = store.Key("venv-only", key)
	}
	final := st.Path(key, name, l.App.Version)
	if _, err := os.Lstat(final); err != nil {
		d := &fetch.Downloader{CacheDir: o.Layout.CacheDir()}
		cached := func(sha256 string) bool { _, err := os.Stat(d.Path(sha256)); return err == nil }
		if err := checkSpace(name+" "+l.App.Version, filepath.Dir(final), o.Layout.CacheDir(), sel, cached); err != nil {
			return nil, err
		}
	}
	res := &Result{Interp: interp, Target: target, Standalone: installed}
	path, built, err := st.Build(ctx, key, name, l.App.Version, func(dir string) error {
		b := &builder{o: o, lock: l, sel: sel, interp: interp, target: target, dir: dir, final: final, msgfmt: msgfmt != ""}
		if err := b.run(ctx); err != nil {
			return err
		}
		res.Project = b.project
		res.Packages = len(b.sel)
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.Path, res.Built = path, built
	if res.Project == "" && !o.VenvOnly {
		if res.Project, err = findProject(filepath.Join(path, AppDir)); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// appSourceForms names the forms --app-source accepts, for messages.
const appSourceForms = "a local directory, git repository or archive (.tar.gz, .tgz, .zip), a file:///PATH, http:// or https:// URL, or git::URL"

// IsURLSource tells whether an --app-source is a URL ("git::…" or
// "scheme://…") rather than a local path.
func IsURLSource(src string) bool {
	return strings.Contains(src, "::") || strings.Contains(src, "://")
}

// CheckAppSource refuses an --app-source that is not there, or whose form
// the fetch does not take. A file:// URL is checked like a local path; an
// http(s) or git URL is left to the fetch.
func CheckAppSource(src string) error {
	if src == "" {
		return nil
	}
	path := src
	if IsURLSource(src) {
		forced, rest, isForced := strings.Cut(src, "::")
		if isForced && forced != "git" {
			return fmt.Errorf("--app-source %s: %q:: is not a source type bitpoll-install fetches: give %s", src, forced, appSourceForms)
		}
		if isForced {
			if rest == "" {
				return fmt.Errorf("--app-source %s names no repository: give %s", src, appSourceForms)
			}
			return nil
		}
		u, err := url.Parse(src)
		if err != nil {
			return fmt.Errorf("--app-source %s is not a valid URL (%v): give %s", src, err, appSourceForms)
		}
		switch u.Scheme {
		case "http", "https":
			return nil
		case "file":
			if u.Host != "" && u.Host != "localhost" || u.Path == "" {
				return fmt.Errorf("--app-source %s: a file URL needs an absolute path, like file:///srv/bitpoll-0.11.0.tar.gz", src)
			}
			path = u.Path
		default:
			return fmt.Errorf("--app-source %s: the scheme %q is not one bitpoll-install fetches: give %s", src, u.Scheme, appSourceForms)
		}
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("--app-source %s does not exist: give a local copy of the app (a directory, a git repository or an archive)", src)
		}
		return fmt.Errorf("--app-source %s: %w", src, err)
	}
	return nil
}

func lessGlibc(a, b wheeltag.Glibc) bool {
	return a.Major < b.Major || (a.Major == b.Major && a.Minor < b.Minor)
}

// storeKey hashes everything that decides the store path's content.
// msgfmt is a build input too: without it the translations are not
// compiled, so installing gettext must give another store path.
func storeKey(l *lockfile.Lock, sel []lockfile.Selected, interp *pyenv.Interpreter, msgfmt string) string {
	parts := []string{"app", l.App.Name, l.App.Version, l.App.Tree, "python", interp.ID(), "shim", hashBytes(shim.SettingsLocal), "msgfmt", msgfmt}
	for _, s := range sel {
		parts = append(parts, "pkg", s.Package.Name, s.Package.Version, s.File.Name, s.File.SHA256)
	}
	return store.Key(parts...)
}

// msgfmtID names the msgfmt that compiles translations (its path and
// version line), or is empty when there is none.
func msgfmtID(ctx context.Context) string {
	path, err := exec.LookPath("msgfmt")
	if err != nil {
		return ""
	}
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return ""
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return path + " " + strings.TrimSpace(first)
}

func hashBytes(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// builder fills one .partial store directory.
type builder struct {
	o       Options
	lock    *lockfile.Lock
	sel     []lockfile.Selected
	interp  *pyenv.Interpreter
	target  wheeltag.Target
	dir     string // where we build
	final   string // where it will live: paths baked into files use this
	project string
	msgfmt  bool // translations can be compiled
}

func (b *builder) run(ctx context.Context) error {
	rep := b.o.Progress
	rep.Log(fmt.Sprintf("building %s %s for %s with %s", b.lock.App.Name, b.lock.App.Version, b.target, b.interp))
	phase := func(p store.Phase) { b.o.Hooks.Call(p, b.dir) }
	comp := startCompiler(ctx, b.interp.Path)
	defer comp.stop()
	if !b.o.VenvOnly {
		phase(PhaseFetchApp)
		if err := b.fetchApp(ctx); err != nil {
			return err
		}
		// The shim goes in before bytecode is compiled, so that it has its
		// .pyc too: Python run as root would write one into the sealed
		// store path.
		if err := b.addShim(); err != nil {
			return err
		}
		// With the final paths baked in; it compiles while the wheels
		// are fetched and installed.
		if err := comp.addTree(filepath.Join(b.dir, AppDir), filepath.Join(b.final, AppDir)); err != nil {
			return fmt.Errorf("compile bytecode of the app: %w", err)
		}
	}
	phase(PhaseFetchFiles)
	paths, err := b.fetchFiles(ctx)
	if err != nil {
		return err
	}
	phase(PhaseVenv)
	venv, err := pyenv.CreateVenv(filepath.Join(b.dir, VenvDir), b.interp)
	if err != nil {
		return err
	}
	phase(PhaseWheels)
	wheelsStart := time.Now()
	pycs, err := b.pycCache(venv, comp)
	if err != nil {
		return err
	}
	defer pycs.cleanup()
	dists, err := b.installAll(ctx, venv, paths, pycs)
	if err != nil {
		return err
	}
	files := 0
	for _, d := range dists {
		files += len(d.files)
	}
	rep.Log(fmt.Sprintf("installed %s into the venv, %s, in %s",
		countOf(len(b.sel), "package", "packages"), countOf(files, "file", "files"), secondsOf(time.Since(wheelsStart))))
	phase(PhaseCompile)
	compileStart := time.Now()
	if err := comp.wait(); err != nil {
		return err
	}
	if err := pycs.finish(); err != nil {
		return err
	}
	linked, err := b.linkBytecode(ctx, venv, dists, pycs)
	if err != nil {
		return err
	}
	// The compile ran beside the wheels' install; its time here is the
	// wait after them.
	rep.Log(fmt.Sprintf("the venv is complete: %s placed in it; compiled %s (the app's, and the wheels' the cache lacked) in %s",
		countOf(linked, "bytecode file", "bytecode files"), countOf(int(comp.done.Load()), "file", "files"), secondsOf(time.Since(compileStart))))
	// The venv is most of the build: on to the disk while the app is
	// prepared. The store's own sync still decides durability.
	synced := store.StartSync(b.dir)
	defer func() { _ = synced() }()
	if !b.o.VenvOnly {
		phase(PhasePrepareApp)
		prepStart := time.Now()
		if err := b.prepareApp(ctx); err != nil {
			return err
		}
		static, err := countFiles(filepath.Join(b.dir, StaticDir))
		if err != nil {
			return err
		}
		translations := "translations compiled"
		if !b.msgfmt {
			translations = "translations not compiled"
		}
		rep.Log(fmt.Sprintf("collected %s, %s, in %s", countOf(static, "static file", "static files"), translations, secondsOf(time.Since(prepStart))))
	}
	phase(PhaseManifest)
	return b.writeManifest()
}

// fetchApp puts the app tree at dir/app and checks it hashes to the lock's
// tree id, whatever form the source had.
func (b *builder) fetchApp(ctx context.Context) error {
	dst := filepath.Join(b.dir, AppDir)
	src := b.o.AppSource
	app := b.lock.App
	switch {
	case src != "" && fetch.IsGitRepo(src):
		if app.Commit == "" {
			return fmt.Errorf("--app-source %s is a git repository, but the lock pins no commit: give the tree the lock was made from", src)
		}
		exp, err := fetch.ExportGitTree(ctx, src, app.Commit, dst)
		if err != nil {
			return err
		}
		if len(exp.Missing) > 0 {
			return fmt.Errorf("--app-source %s lacks %d files of commit %s (first: %s): use a complete mirror or a tree locked with --app-source DIR",
				src, len(exp.Missing), app.Commit, exp.Missing[0])
		}
	case src != "":
		get := src
		if !IsURLSource(src) {
			abs, err := filepath.Abs(src)
			if err != nil {
				return err
			}
			get = abs
		}
		if err := fetch.GetLimited(ctx, get, dst, b.o.Unpack); err != nil {
			return err
		}
	default:
		if app.Commit == "" {
			return errors.New("the lock pins a local source with no commit: give it with --app-source DIR")
		}
		repo := filepath.Join(b.dir, ".app.git")
		if err := fetch.GetLimited(ctx, "git::"+app.URL+"?ref="+app.Commit, repo, b.o.Unpack); err != nil {
			return fmt.Errorf("fetch %s at %s: %w (no network? give a local copy with --app-source)", app.URL, app.Commit, err)
		}
		if _, err := fetch.ExportGitTree(ctx, repo, app.Commit, dst); err != nil {
			return err
		}
		if err := os.RemoveAll(repo); err != nil {
			return err
		}
	}
	tree, err := treehash.GitTree(dst)
	if err != nil {
		return err
	}
	if tree != app.Tree {
		return fmt.Errorf("the app source hashes to tree %s, but the lock pins %s: it is not the locked %s %s (a different version, or modified files)",
			tree, app.Tree, app.Name, app.Version)
	}
	if b.o.CheckApp != nil {
		if err := b.o.CheckApp(dst); err != nil {
			return err
		}
	}
	b.o.Progress.Log(fmt.Sprintf("verified %s %s: tree %s", app.Name, app.Version, tree))
	return nil
}

func (b *builder) fetchFiles(ctx context.Context) (map[string]string, error) {
	var arts []fetch.Artifact
	for _, s := range b.sel {
		arts = append(arts, fetch.Artifact{Name: s.File.Name, URL: s.File.URL, Size: s.File.Size, SHA256: s.File.SHA256})
	}
	for _, s := range b.sel {
		if !s.IsSdist {
			continue
		}
		for _, br := range b.buildClosure() {
			if f, ok := br.Pick(b.target); ok {
				arts = append(arts, fetch.Artifact{Name: f.File.Name, URL: f.File.URL, Size: f.File.Size, SHA256: f.File.SHA256})
			}
		}
	}
	// Verify: every cached file is hashed before it is unpacked or read,
	// so a damaged download is fetched again instead of trusted by size.
	d := &fetch.Downloader{CacheDir: b.o.Layout.CacheDir(), Progress: b.o.Progress, Verify: true, Exclusive: true}
	return d.Fetch(ctx, arts)
}

// buildClosure is the build-only packages the sdist entries need; the lock
// lists them flat, and all of them go into every build environment.
func (b *builder) buildClosure() []*lockfile.Package {
	var out []*lockfile.Package
	for i := range b.lock.Packages {
		if q := &b.lock.Packages[i]; q.BuildOnly {
			out = append(out, q)
		}
	}
	return out
}

// installAll installs the selected distributions into venv, several at
// once, and queues the sources whose bytecode the cache lacks (see
// pycCache).
func (b *builder) installAll(ctx context.Context, venv *pyenv.Venv, paths map[string]string, pycs *pycCache) ([]installed, error) {
	if err := os.MkdirAll(filepath.Join(b.o.Layout.CacheDir(), unpackedDir), 0o755); err != nil {
		return nil, err
	}
	// The cache names files by hash; installers want the wheel's own name.
	named, err := os.MkdirTemp(b.o.Layout.CacheDir(), ".named-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(named)
	byName := func(sha, name string) (string, error) {
		p := filepath.Join(named, name)
		if err := os.Symlink(paths[sha], p); err != nil && !errors.Is(err, os.ErrExist) {
			return "", err
		}
		return p, nil
	}
	dists := make([]installed, len(b.sel))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, s := range b.sel {
		g.Go(func() (err error) {
			dists[i], err = b.installWheel(gctx, venv, s, byName, pycs)
			if err != nil {
				// Name the lock entry: the wheel's path here is a temporary
				// link, gone after the run.
				return fmt.Errorf("%s %s (%s): %w", s.Package.Name, s.Package.Version, s.File.URL, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return dists, nil
}

// linkBytecode copies the cached bytecode of dists into the venv. An
// entry found damaged is removed, its sources are compiled again into a
// new entry, and that is copied instead: a damaged entry never reaches
// the venv, and the next build finds a good one.
func (b *builder) linkBytecode(ctx context.Context, venv *pyenv.Venv, dists []installed, pycs *pycCache) (int, error) {
	total := 0
	for attempt := 0; ; attempt++ {
		n, damaged, err := pycs.link(venv.Dir, dists)
		total += n
		if err != nil || len(damaged) == 0 {
			return total, err
		}
		for _, d := range pycs.damage {
			b.o.Progress.Log(fmt.Sprintf("the bytecode cache entry %s: removed it; compiling its sources again", d))
		}
		if attempt > 0 {
			return total, fmt.Errorf("bytecode compiled again for %d distributions failed its check at once (%s): is the cache's file system failing?", len(damaged), strings.Join(pycs.damage, "; "))
		}
		pycs.damage = nil
		comp := startCompiler(ctx, b.interp.Path)
		pycs.comp = comp
		for _, d := range damaged {
			e, err := pycs.open(d.key)
			if err != nil {
				comp.stop()
				return total, err
			}
			if e == nil {
				comp.stop()
				return total, fmt.Errorf("bytecode cache entry %s is back after it was removed: is another process writing the cache?", pycs.dir(d.key))
			}
			placed := pycs.placed(e, venv.Dir)
			for _, f := range d.files {
				placed(filepath.Join(venv.Dir, filepath.FromSlash(f)))
			}
		}
		if err := comp.wait(); err != nil {
			return total, err
		}
		if err := pycs.finish(); err != nil {
			return total, err
		}
		dists = damaged
	}
}

// has reports whether the environment holds the named distribution.
func (b *builder) has(name string) bool {
	for _, s := range b.sel {
		if s.Package.Name == name {
			return true
		}
	}
	return false
}

// addShim drops the settings shim into the app's Django project.
func (b *builder) addShim() error {
	project, err := findProject(filepath.Join(b.dir, AppDir))
	if err != nil {
		return err
	}
	b.project = project
	if err := os.WriteFile(filepath.Join(b.dir, AppDir, project, "settings_local.py"), shim.SettingsLocal, 0o644); err != nil {
		return fmt.Errorf("add the settings shim: %w", err)
	}
	return nil
}

// prepareApp runs collectstatic and compilemessages into the store.
func (b *builder) prepareApp(ctx context.Context) error {
	// Inside the root, not $TMPDIR: it holds throwaway secrets, and the
	// next build sweeps it if this one is killed.
	tmp, err := os.MkdirTemp(b.o.Layout.CacheDir(), buildTempPrefix+"*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// Build-time settings: a throwaway key and database; nothing of them
	// reaches the store but the collected files.
	secrets := filepath.Join(tmp, "secrets")
	if err := WriteSecrets(secrets); err != nil {
		return err
	}
	settings := shim.Settings{
		AllowedHosts: []string{"localhost"},
		BaseURL:      "http://localhost",
		Database:     shim.Database{Engine: "sqlite", Path: filepath.Join(tmp, "build.sqlite3")},
		StaticRoot:   filepath.Join(b.dir, StaticDir),
		MediaRoot:    filepath.Join(tmp, "media"),
	}
	env, err := managementEnv(settings, tmp, secrets)
	if err != nil {
		return err
	}
	py := filepath.Join(b.dir, VenvDir, "bin", "python")
	// writes is what each command writes, for a message on a full disk
	// that names no file.
	run := func(writes string, args ...string) error {
		cmd := exec.CommandContext(ctx, py, append([]string{"manage.py"}, args...)...)
		cmd.Dir = filepath.Join(b.dir, AppDir)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return pythonFailure("manage.py "+strings.Join(args, " "), writes, err, out)
		}
		return nil
	}
	// Static files and translations touch different files: made at once.
	var g errgroup.Group
	g.Go(func() error {
		if err := run(filepath.Join(b.dir, StaticDir), "collectstatic", "--noinput"); err != nil {
			return err
		}
		if !b.has("whitenoise") {
			return nil
		}
		// Compressed variants beside each file, made once here: WhiteNoise
		// then serves gzip (and brotli, if installed) without compressing
		// per request, whatever storage backend the project uses.
		cmd := exec.CommandContext(ctx, py, "-m", "whitenoise.compress", "--quiet", filepath.Join(b.dir, StaticDir))
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return pythonFailure("compress static files", filepath.Join(b.dir, StaticDir), err, out)
		}
		return nil
	})
	if !b.msgfmt {
		b.o.Progress.Log("msgfmt (gettext) is not installed: translations are not compiled; install gettext and run this again, which builds a new store path with them")
	} else {
		g.Go(func() error { return run(filepath.Join(b.dir, AppDir), "compilemessages") })
	}
	return g.Wait()
}

// findProject finds the Django project package: the folder beside
// manage.py whose settings.py star-imports settings_local.
func findProject(app string) (string, error) {
	if _, err := os.Stat(filepath.Join(app, "manage.py")); err != nil {
		return "", fmt.Errorf("the app source has no manage.py: is it a Django project? %w", err)
	}
	entries, err := os.ReadDir(app)
	if err != nil {
		return "", err
	}
	var found []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(app, e.Name(), "settings.py"))
		if err == nil && strings.Contains(string(data), "settings_local") {
			found = append(found, e.Name())
		}
	}
	sort.Strings(found)
	if len(found) != 1 {
		return "", fmt.Errorf("want exactly one project folder whose settings.py imports settings_local, found %q", found)
	}
	return found[0], nil
}

func (b *builder) writeManifest() error {
	type pkg struct{ Name, Version, File, SHA256 string }
	m := struct {
		App        lockfile.App
		Python     string
		BasePrefix string // where the interpreter lives: the service must see it
		Target     string
		Project    string
		Pkgs       []pkg
	}{App: b.lock.App, Python: b.interp.ID(), BasePrefix: b.interp.BasePrefix, Target: b.target.String(), Project: b.project}
	for _, s := range b.sel {
		m.Pkgs = append(m.Pkgs, pkg{s.Package.Name, s.Package.Version, s.File.Name, s.File.SHA256})
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(b.dir, Manifest), append(data, '\n'), 0o644)
}

func tail(out []byte) string {
	s := strings.TrimSpace(string(out))
	lines := strings.Split(s, "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// cleanEnv is the environment for Python subprocesses: the caller's
// PATH and locale, none of the variables that would change what Python
// imports.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "PYTHON"), k == "VIRTUAL_ENV", strings.HasPrefix(k, "PIP_"), k == "DJANGO_SETTINGS_MODULE":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// countOf is "1 file" or "45 files".
func countOf(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func secondsOf(d time.Duration) string {
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// countFiles counts the regular files under dir.
func countFiles(dir string) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("count the files of %s: %w", dir, err)
	}
	return n, nil
}

// findInterpreter decides what the build runs on: a host Python that fits
// a target, or the lock's pinned standalone interpreter (returned as
// pinned, not yet in the store), as o.Python says.
func findInterpreter(ctx context.Context, o Options, l *lockfile.Lock, targets []wheeltag.Target, wants []pyenv.Want) (*pyenv.Interpreter, *lockfile.Interpreter, error) {
	switch o.Python {
	case PythonStandalone:
		e, err := pinnedForHost(l, targets)
		if err != nil {
			return nil, nil, fmt.Errorf("--python standalone: %w", err)
		}
		return nil, &e, nil
	case "", PythonAuto:
		interp, err := pyenv.Find(ctx, wants, pyenv.FindOptions{})
		var nf *pyenv.NotFoundError
		if errors.As(err, &nf) {
			e, perr := pinnedForHost(l, targets)
			if perr == nil {
				o.Progress.Log(fmt.Sprintf("no Python on this host fits the lock; using the lock's pinned %s for %s", e, e.Target))
				return nil, &e, nil
			}
			if len(l.Interpreters) == 0 {
				return nil, nil, fmt.Errorf("find a Python for the lock: %w\n  or re-lock with --python-standalone, and install fetches the interpreter the lock pins", err)
			}
			return nil, nil, fmt.Errorf("find a Python for the lock: %w\n  and %v", err, perr)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("find a Python for the lock: %w", err)
		}
		return interp, nil, nil
	default:
		interp, err := pyenv.Find(ctx, wants, pyenv.FindOptions{Explicit: o.Python})
		if err != nil {
			return nil, nil, fmt.Errorf("find a Python for the lock: %w", err)
		}
		return interp, nil, nil
	}
}

// pinnedForHost is the lock's pinned interpreter for the first of its
// targets on this host's architecture that has one.
func pinnedForHost(l *lockfile.Lock, targets []wheeltag.Target) (lockfile.Interpreter, error) {
	arch := standalone.HostArch()
	for _, t := range targets {
		if t.Arch != arch {
			continue
		}
		if e, ok := l.InterpreterFor(t.String()); ok {
			return e, nil
		}
	}
	if len(l.Interpreters) == 0 {
		return lockfile.Interpreter{}, errors.New("the lock pins no standalone interpreter: re-lock with --python-standalone")
	}
	var have []string
	for _, e := range l.Interpreters {
		have = append(have, e.Target)
	}
	return lockfile.Interpreter{}, fmt.Errorf("the lock pins standalone interpreters for %s only, none for this host's %s: re-lock with --target for %s and --python-standalone",
		strings.Join(have, ", "), arch, arch)
}
