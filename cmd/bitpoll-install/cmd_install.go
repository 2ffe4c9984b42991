package main

import (
	"github.com/bitpoll-install/bitpoll-install/layout"

	"bytes"

	"github.com/bitpoll-install/bitpoll-install/httpretry"
	"github.com/bitpoll-install/bitpoll-install/safearchive"

	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	bitpollinstall "github.com/bitpoll-install/bitpoll-install"
	"github.com/bitpoll-install/bitpoll-install/bundle"
	"github.com/bitpoll-install/bitpoll-install/config"
	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/service"
	"github.com/bitpoll-install/bitpoll-install/store"
	"github.com/bitpoll-install/bitpoll-install/unitgen"
)

// buildOptions are the flags shared by the commands that build a store path.
type buildOptions struct {
	Lock       string
	AppSource  string
	Python     string
	OnlyBinary bool
	FromBundle string
	unpackOptions
	lock   *lockfile.Lock // a lock made on the fly (upgrade --app-version)
	opened *bundle.Opened // --from-bundle, once unpacked
}

// unpackOptions are the limits on what an archive may unpack to, for
// every command that reads archives. safearchive's refusals name these
// flags.
type unpackOptions struct {
	Unpack safearchive.Limits
}

func (o *unpackOptions) AddFlags(c *cobra.Command) {
	f := c.Flags()
	f.Int64Var(&o.Unpack.Ratio, safearchive.FlagRatio, safearchive.DefaultRatio, "an archive (the app source, an sdist, a wheel) may unpack to at most `N` times its own size")
	f.Int64Var(&o.Unpack.Ceiling, safearchive.FlagCeiling, safearchive.DefaultCeiling, "an archive may unpack to at most `BYTES`, whatever its size")
	f.IntVar(&o.Unpack.Files, safearchive.FlagFiles, safearchive.DefaultFiles, "an archive may hold at most `N` members")
}

// check refuses limits that are not positive.
func (o *unpackOptions) check() error {
	if o.Unpack.Ratio <= 0 || o.Unpack.Ceiling <= 0 || o.Unpack.Files <= 0 {
		return &usageError{fmt.Errorf("--%s, --%s and --%s must be positive", safearchive.FlagRatio, safearchive.FlagCeiling, safearchive.FlagFiles)}
	}
	return nil
}

func (o *buildOptions) AddFlags(c *cobra.Command) {
	o.unpackOptions.AddFlags(c)
	f := c.Flags()
	f.StringVar(&o.Lock, "lock", "", "the lock to install, a `FILE` or an https:// URL (default: the lock built into this binary)")
	f.StringVar(&o.AppSource, "app-source", "", "a local mirror or tree of the app (`DIR`); its content must hash to the lock's tree")
	f.StringVar(&o.Python, "python", install.PythonAuto, "the Python interpreter: a `PATH`; \"standalone\", the one the lock pins ([[interpreter]], see lock --python-standalone); or \"auto\", one matching a lock target on PATH, in pyenv or uv, else the pinned one")
	f.BoolVar(&o.OnlyBinary, "only-binary", false, "refuse to build sdist entries from source")
	f.StringVar(&o.FromBundle, "from-bundle", "", "build from the offline bundle `FILE` (bitpoll-install bundle): its lock, app source and files, with no network")
}

// readLock reads --lock, or the built-in lock.
func (o *buildOptions) readLock() (*lockfile.Lock, error) {
	if o.lock != nil {
		return o.lock, nil
	}
	if o.Lock == "" {
		return lockfile.Parse(bitpollinstall.DefaultLock, "built-in bitpoll.lock")
	}
	if strings.HasPrefix(o.Lock, "https://") {
		return downloadLock(o.Lock)
	}
	if strings.Contains(o.Lock, "://") {
		return nil, &usageError{fmt.Errorf("--lock %s: give a file or an https:// URL", o.Lock)}
	}
	return lockfile.ReadFile(o.Lock)
}

// maxLockSize bounds a lock fetched by URL; Bitpoll's is about 60 KiB.
const maxLockSize = 16 << 20

// downloadLock fetches a lock over https. The lock names the hash of
// everything it pins, so TLS need only bring the lock itself intact.
func downloadLock(url string) (*lockfile.Lock, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var buf bytes.Buffer
	err := httpretry.New(httpretry.Options{UserAgent: "bitpoll-install/" + version}).Get(ctx, url, nil, func(r *httpretry.Response) error {
		buf.Reset()
		_, err := httpretry.Copy(&buf, r.Body, url, -1, maxLockSize, "")
		return err
	})
	var se *httpretry.SizeError
	if errors.As(err, &se) {
		return nil, fmt.Errorf("--lock: %s is larger than %d MiB; that is no lock", url, maxLockSize>>20)
	}
	if err != nil {
		return nil, fmt.Errorf("--lock: download %s: %w", url, err)
	}
	return lockfile.Parse(buf.Bytes(), url)
}

// installOptions are the build's inputs as the flags give them. With
// --from-bundle, the bundle is unpacked and its files added to the cache
// first; closeBundle removes what is left of it.
func (o *buildOptions) installOptions(g *globalOptions, layout store.Layout) (install.Options, error) {
	if err := o.unpackOptions.check(); err != nil {
		return install.Options{}, err
	}
	if o.FromBundle != "" {
		if o.Lock != "" || o.AppSource != "" || o.lock != nil {
			return install.Options{}, &usageError{errors.New("--from-bundle brings its own lock and app source: drop --lock, --app-source and --app-version")}
		}
		if o.opened == nil {
			u, err := bundle.Open(o.FromBundle, "", layout.CacheDir(), o.Unpack)
			if err != nil {
				return install.Options{}, err
			}
			o.opened = u
			newReporter(g).Notef("opened the bundle %s: %s %s, %d files for %v, each checked against its lock", o.FromBundle,
				u.Manifest.App, u.Manifest.Version, len(u.Manifest.Files), u.Manifest.Targets)
		}
		return install.Options{
			Lock: o.opened.Lock, Layout: layout, Python: o.Python, HTTPClient: g.httpClient, AppSource: o.opened.AppDir, OnlyBinary: o.OnlyBinary, Unpack: o.Unpack,
			Progress: g.progress(), Hooks: g.hooks, CheckApp: appPinsChecker(o.opened.Lock), Offline: true,
		}, nil
	}
	l, err := o.readLock()
	if err != nil {
		return install.Options{}, err
	}
	return install.Options{
		Lock: l, Layout: layout, Python: o.Python, HTTPClient: g.httpClient, AppSource: o.AppSource, OnlyBinary: o.OnlyBinary, Unpack: o.Unpack,
		Progress: g.progress(), Hooks: g.hooks, CheckApp: appPinsChecker(l),
	}, nil
}

// closeBundle removes the unpacked --from-bundle, if any.
func (o *buildOptions) closeBundle() {
	if o.opened != nil {
		o.opened.Close()
		o.opened = nil
	}
}

func (o *buildOptions) build(ctx context.Context, g *globalOptions, layout store.Layout) (*install.Result, error) {
	return o.buildLocked(ctx, g, layout, false)
}

// buildLocked builds; locked says the caller holds the store lock.
func (o *buildOptions) buildLocked(ctx context.Context, g *globalOptions, layout store.Layout, locked bool) (*install.Result, error) {
	defer o.closeBundle()
	opts, err := o.installOptions(g, layout)
	if err != nil {
		return nil, err
	}
	opts.Locked = locked
	return install.Build(ctx, opts)
}

// installOptions are the flags of "install".
type installOptions struct {
	buildOptions
	configOptions
	switchOptions
	SecretKeyFile string
	NoStart       bool
}

// switchOptions are the flags of every command that switches generations.
type switchOptions struct {
	NoWait      bool
	GateTimeout time.Duration
}

func (o *switchOptions) AddFlags(c *cobra.Command) {
	c.Flags().BoolVar(&o.NoWait, "no-wait", false, "fail at once when another bitpoll-install holds the store lock, instead of waiting for it")
	c.Flags().DurationVar(&o.GateTimeout, "gate-timeout", service.DefaultGateTimeout, "how long the health gate waits for the new generation's first answer")
}

// lockStore opens the layout's store and takes its lock for the whole
// command, saying whom it waits for.
func (o *switchOptions) lockStore(ctx context.Context, g *globalOptions, layout store.Layout) (*store.Store, func() error, error) {
	st, err := store.Open(layout)
	if err != nil {
		return nil, nil, err
	}
	st.Hooks = g.hooks
	rep := newReporter(g)
	unlock, err := st.LockWith(ctx, store.LockOptions{NoWait: o.NoWait, Waiting: func(pid int) {
		if pid > 0 {
			rep.Notef("waiting for process %d (another bitpoll-install) to release the store lock", pid)
		} else {
			rep.Notef("waiting for another bitpoll-install to release the store lock")
		}
	}})
	if err != nil {
		return nil, nil, err
	}
	return st, unlock, nil
}

// loadConfig checks the config (writing the commented default when there
// is none and none was named) before anything is built or changed.
func loadConfig(g *globalOptions, o configOptions) (*config.Config, error) {
	rep := newReporter(g)
	path := o.Config
	if path == "" {
		path = filepath.Join(g.Root, config.DefaultPath)
		if wrote, err := config.WriteDefault(path); err != nil {
			return nil, err
		} else if wrote {
			rep.Notef("wrote the default config %s (the site at http://localhost:8000): set base_url and allowed_hosts there and run install again to serve it under its own name", path)
		}
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings() {
		rep.Notef("warning: %s", w)
	}
	return cfg, nil
}

func newInstallCommand(g *globalOptions) *cobra.Command {
	var o installOptions
	c := &cobra.Command{
		Use:   "install",
		Short: "Build the locked Bitpoll, make it current and run it under systemd",
		Long: `Build the locked Bitpoll into the content-addressed store under
/opt/bitpoll/store, verified byte for byte against the lock, and switch
to it as a new generation. Then put it into service:
/etc/bitpoll/settings.json from /etc/bitpoll/bitpoll.toml (a commented
default is written when there is none), secrets in /etc/bitpoll/secrets
(generated once, root-only, never overwritten), and the hardened units
bitpoll.socket, bitpoll@.service and bitpoll-migrate@.service.

A switch to a new generation snapshots the database, migrates it with the
new code, and passes a health gate (the new code answers 200 on a private
socket, no migration is left unapplied, SQLite's integrity check passes)
before it takes traffic. Then the new generation starts on the same
listening socket beside the old one, and the old one stops after its
requests: no connection is refused or stalled. If the gate fails, nothing
the users see changes. Installing an older lock over a newer one reverses
the newer migrations first, with the newer code; see also rollback.

The config is checked before anything is built or changed: a mistake is
reported with its file, line, key and fix, and the running service is left
as it is. The build happens under a temporary name and is renamed into
place, so an interrupted install leaves nothing half-made. The store lock
is held from the first read of the current state to the last unit
written; a second command waits for it (--no-wait fails instead).

With --root DIR every path moves under DIR and systemd is not touched:
the migrations and the health gate run directly, as you.`,
		Example: `  sudo bitpoll-install install
  sudo bitpoll-install install --secret-key-file /etc/bitpoll/my-secret-key
  bitpoll-install install --root /tmp/trial --lock bitpoll.lock --app-source ~/src/Bitpoll`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInstall(cmd.Context(), g, o)
		},
	}
	o.buildOptions.AddFlags(c)
	o.configOptions.AddFlags(c)
	o.switchOptions.AddFlags(c)
	c.Flags().StringVar(&o.SecretKeyFile, "secret-key-file", "", "use the SECRET_KEY in `FILE` instead of generating one (never replaces an existing key)")
	c.Flags().BoolVar(&o.NoStart, "no-start", false, "write everything and switch, but leave systemd alone")
	return c
}

func runInstall(ctx context.Context, g *globalOptions, o installOptions) error {
	layout := store.Layout{Root: g.Root}
	systemd := g.Root == "" && !o.NoStart
	if g.Root == "" && os.Geteuid() != 0 {
		return &usageError{errors.New("install writes /opt/bitpoll, /etc/bitpoll and systemd units: run it as root, or try it without root with --root DIR (or \"bitpoll-install run\")")}
	}
	// Before anything is created: the store, the lock file, the config.
	if err := install.CheckAppSource(o.AppSource); err != nil {
		return err
	}
	cfg, err := loadConfig(g, o.configOptions)
	if err != nil {
		return err
	}
	if systemd && !socketHolds(g.Root, cfg) {
		if err := cfg.CheckPortFree(); err != nil {
			return err
		}
	}
	st, unlock, err := o.lockStore(ctx, g, layout)
	if err != nil {
		return err
	}
	defer unlock()
	if _, serving, err := st.CurrentGeneration(); err != nil {
		return err
	} else if serving && systemd {
		// A generation serves while this one builds: the requests come first.
		restore, err := yieldCPU()
		if err != nil {
			return err
		}
		defer restore()
	}
	res, err := o.buildLocked(ctx, g, layout, true)
	if err != nil {
		return err
	}
	plan, err := service.Prepare(res.Project, res.Interp.BasePrefix, res.Interp.RealPath, o.serviceOptions(g, cfg, layout, systemd))
	if err != nil {
		return err
	}
	r, err := plan.Deploy(ctx, st, res.Path)
	if err != nil {
		return err
	}
	printSwitch(g, r, res)
	return nil
}

func (o installOptions) serviceOptions(g *globalOptions, cfg *config.Config, layout store.Layout, systemd bool) service.Options {
	rep := newReporter(g)
	return service.Options{
		Layout: layout, Config: cfg, SecretKeyFile: o.SecretKeyFile, Systemd: systemd, Hooks: g.hooks,
		GateTimeout: o.GateTimeout, Log: func(msg string) { rep.Notef("%s", msg) },
	}
}

// printSwitch reports what a switch did; res is the build, or nil for a
// rollback.
func printSwitch(g *globalOptions, r *service.Result, res *install.Result) {
	if g.JSON {
		rec := switchRecord{MessageType: "switch", Generation: r.Generation.N, Switched: r.Switched,
			StorePath: r.Generation.Target, UnitsChanged: list(r.Units), SettingsChanged: r.Settings,
			Snapshot: optional(r.Snapshot), Reversed: list(r.Reversed), Applied: list(r.Applied),
			RestoredFrom: optional(r.Restored), Started: r.Started, ReadyMS: r.Ready.Milliseconds(),
			PhasesMS: phasesMS(g.clock.buildPhases(), r.Phases), Seconds: g.clock.elapsed().Seconds()}
		if r.Previous > 0 {
			rec.Previous = &r.Previous
		}
		if res != nil {
			rec.Built, rec.Python, rec.Target = &res.Built, optional(res.Interp.String()), optional(res.Target.String())
			rec.PackagesInstalled = &res.Packages
		}
		writeJSONLine(g.stdout, rec)
		return
	}
	w := g.stdout
	if res != nil {
		verb := "reused"
		if res.Built {
			verb = "built"
		}
		fmt.Fprintf(w, "%s %s\n", verb, res.Path)
	}
	// What changed besides the store path, by file.
	var changed []string
	if r.Settings {
		changed = append(changed, filepath.Join(g.Root, layout.Settings))
	}
	if r.GunicornConf {
		changed = append(changed, filepath.Join(g.Root, layout.GunicornConf))
	}
	for _, u := range r.Units {
		changed = append(changed, filepath.Join(g.Root, service.UnitDir, u))
	}
	for _, c := range changed {
		fmt.Fprintf(w, "changed %s\n", c)
	}
	if r.Restored != "" {
		fmt.Fprintf(w, "restored the snapshot; the database it replaced is kept at %s\n", r.Restored)
	}
	if r.Snapshot != "" {
		fmt.Fprintf(w, "snapshot of the database: %s\n", r.Snapshot)
	}
	if len(r.Reversed) > 0 {
		fmt.Fprintf(w, "reversed migrations: %s\n", strings.Join(r.Reversed, ", "))
	}
	if len(r.Applied) > 0 {
		fmt.Fprintf(w, "applied migrations: %s\n", strings.Join(r.Applied, ", "))
	}
	why := ""
	if res != nil && !res.Built && len(changed) > 0 {
		// The same store path: only the config made this generation.
		why = fmt.Sprintf(" for the changed config (%s); the app is the same store path", plural(len(changed), "file", "files"))
	}
	switch {
	case r.Switched && r.Previous > 0:
		fmt.Fprintf(w, "generation %d is now current (was %d)%s\n", r.Generation.N, r.Previous, why)
	case r.Switched:
		fmt.Fprintf(w, "generation %d is now current\n", r.Generation.N)
	default:
		fmt.Fprintf(w, "generation %d was already current; nothing changed\n", r.Generation.N)
	}
	switch {
	case r.Started:
		fmt.Fprintf(w, "bitpoll@%d.service is running; logs: journalctl -u 'bitpoll@*'\n", r.Generation.N)
	case g.Root != "" && r.Switched:
		fmt.Fprintf(w, "systemd was left alone (--root %s): the units are written to %s, nothing runs them; "+
			"to serve this generation in the foreground, run 'bitpoll-install --root %s run' with the same --lock and --app-source, "+
			"and to put it under systemd, run install as root without --root\n",
			g.Root, filepath.Join(g.Root, service.UnitDir), g.Root)
	case g.Root != "":
		fmt.Fprintf(w, "systemd was left alone (--root %s)\n", g.Root)
	case r.Switched:
		// --no-start: the files are written and current moved, and the
		// running service was not told.
		next := fmt.Sprintf("systemctl daemon-reload && systemctl start bitpoll.socket bitpoll@%d.service", r.Generation.N)
		if r.Previous > 0 {
			next += fmt.Sprintf(" && systemctl stop bitpoll@%d.service", r.Previous)
		}
		fmt.Fprintf(w, "systemd was left alone (--no-start): to serve generation %d, run %s\n", r.Generation.N, next)
	}
	if line := installedLine(res, g.clock.buildPhases()); line != "" {
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w, summary("done", g.clock.elapsed(), g.clock.buildPhases(), r.Phases))
}

// switchRecord is what install, upgrade and rollback did.
type switchRecord struct {
	MessageType string `json:"message_type"` // "switch"
	Generation  int    `json:"generation"`
	Previous    *int   `json:"previous"` // null for the first generation
	Switched    bool   `json:"switched"`
	StorePath   string `json:"store_path"`
	Built       *bool  `json:"built"` // null for a rollback, which builds nothing
	// PackagesInstalled: into the venv by this build; 0 when the store
	// had the path, null for a rollback.
	PackagesInstalled *int             `json:"packages_installed"`
	Python            *string          `json:"python"`
	Target            *string          `json:"target"`
	UnitsChanged      []string         `json:"units_changed"`
	SettingsChanged   bool             `json:"settings_changed"`
	Snapshot          *string          `json:"snapshot"`
	Reversed          []string         `json:"reversed"`
	Applied           []string         `json:"applied"`
	RestoredFrom      *string          `json:"restored_from"`
	Started           bool             `json:"started"`
	ReadyMS           int64            `json:"ready_ms"`
	PhasesMS          map[string]int64 `json:"phases_ms"` // each step's time, by name
	Seconds           float64          `json:"seconds"`   // the whole command's
}

// socketHolds reports whether the installed bitpoll.socket already listens
// where cfg says: then the port is taken by Bitpoll itself.
func socketHolds(root string, cfg *config.Config) bool {
	data, err := os.ReadFile(filepath.Join(root, service.UnitDir, unitgen.SocketUnit))
	if err != nil {
		return false
	}
	spec, err := cfg.Spec(unitgen.DefaultPaths())
	if err != nil {
		return false
	}
	return strings.Contains(string(data), "\nListenStream="+spec.Listen+"\n")
}
