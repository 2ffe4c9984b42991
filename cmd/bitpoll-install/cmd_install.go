package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	bitpollinstall "github.com/bitpoll-install/bitpoll-install"
	"github.com/bitpoll-install/bitpoll-install/config"
	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/progress"
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
}

func (o *buildOptions) AddFlags(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&o.Lock, "lock", "", "the lock `FILE` to install (default: the lock built into this binary)")
	f.StringVar(&o.AppSource, "app-source", "", "a local mirror or tree of the app (`DIR`); its content must hash to the lock's tree")
	f.StringVar(&o.Python, "python", "", "the Python interpreter `PATH` to use (default: one matching a lock target, found on PATH, in pyenv or uv)")
	f.BoolVar(&o.OnlyBinary, "only-binary", false, "refuse to build sdist entries from source")
}

// readLock reads --lock, or the built-in lock.
func (o *buildOptions) readLock() (*lockfile.Lock, error) {
	if o.Lock == "" {
		return lockfile.Parse(bitpollinstall.DefaultLock, "built-in bitpoll.lock")
	}
	return lockfile.ReadFile(o.Lock)
}

// installOptions are the build's inputs as the flags give them.
func (o *buildOptions) installOptions(g *globalOptions, layout store.Layout) (install.Options, error) {
	l, err := o.readLock()
	if err != nil {
		return install.Options{}, err
	}
	return install.Options{
		Lock: l, Layout: layout, Python: o.Python, AppSource: o.AppSource, OnlyBinary: o.OnlyBinary,
		Progress: progress.New(g.stderr, g.JSON), Hooks: g.hooks, CheckApp: appPinsChecker(l),
	}, nil
}

func (o *buildOptions) build(ctx context.Context, g *globalOptions, layout store.Layout) (*install.Result, error) {
	opts, err := o.installOptions(g, layout)
	if err != nil {
		return nil, err
	}
	return install.Build(ctx, opts)
}

// installOptions are the flags of "install".
type installOptions struct {
	buildOptions
	configOptions
	SecretKeyFile string
	NoStart       bool
}

func newInstallCommand(g *globalOptions) *cobra.Command {
	var o installOptions
	c := &cobra.Command{
		Use:   "install",
		Short: "Build the locked Bitpoll, make it current and run it under systemd",
		Long: `Build the locked Bitpoll into the content-addressed store under
/opt/bitpoll/store, verified byte for byte against the lock, and point
/opt/bitpoll/current at a new generation of it. Then put it into service:
/etc/bitpoll/settings.json from /etc/bitpoll/bitpoll.toml (a commented
default is written when there is none), secrets in /etc/bitpoll/secrets
(generated once, root-only, never overwritten), the hardened units
bitpoll.socket, bitpoll.service and bitpoll-migrate.service, a snapshot of
the SQLite database, and through systemd's D-Bus API: daemon-reload,
enable, and a restart that runs the migrations first.

The config is checked before anything is built or changed: a mistake is
reported with its file, line, key and fix, and the running service is left
as it is. The build happens under a temporary name and is renamed into
place, so an interrupted install leaves nothing half-made and current
untouched. If the new generation fails to start, current goes back.

With --root DIR every path moves under DIR and systemd is not touched:
a trial without root.`,
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
	rep := newReporter(g)
	// The config is checked before anything is built or changed.
	path := o.Config
	if path == "" {
		path = filepath.Join(g.Root, config.DefaultPath)
		if wrote, err := config.WriteDefault(path); err != nil {
			return err
		} else if wrote {
			rep.Notef("wrote the default config %s (the site at http://localhost:8000): set base_url and allowed_hosts there and run install again to serve it under its own name", path)
		}
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	if systemd && !socketHolds(g.Root, cfg) {
		if err := cfg.CheckPortFree(); err != nil {
			return err
		}
	}
	for _, w := range cfg.Warnings() {
		rep.Notef("warning: %s", w)
	}

	res, err := o.build(ctx, g, layout)
	if err != nil {
		return err
	}
	plan, err := service.Prepare(res, service.Options{
		Layout: layout, Config: cfg, SecretKeyFile: o.SecretKeyFile, Systemd: systemd, Hooks: g.hooks,
		Log: func(msg string) { rep.Notef("%s", msg) },
	})
	if err != nil {
		return err
	}
	r, err := plan.Apply(ctx)
	if err != nil {
		return err
	}
	if g.JSON {
		writeJSONLine(g.stdout, map[string]any{"message_type": "summary", "store_path": res.Path, "built": res.Built,
			"generation": r.Generation.N, "switched": r.Switched, "python": res.Interp.String(), "target": res.Target.String(),
			"units_changed": r.Units, "snapshot": r.Snapshot, "started": r.Started, "ready_ms": r.Ready.Milliseconds()})
		return nil
	}
	verb := "reused"
	if res.Built {
		verb = "built"
	}
	fmt.Fprintf(g.stdout, "%s %s\n", verb, res.Path)
	if r.Snapshot != "" {
		fmt.Fprintf(g.stdout, "snapshot of the database: %s\n", r.Snapshot)
	}
	if r.Switched {
		fmt.Fprintf(g.stdout, "generation %d is now current\n", r.Generation.N)
	} else {
		fmt.Fprintf(g.stdout, "generation %d was already current\n", r.Generation.N)
	}
	if r.Started {
		fmt.Fprintf(g.stdout, "bitpoll.service is running (started in %v); logs: journalctl -u bitpoll.service\n", r.Ready.Round(time.Millisecond))
	}
	return nil
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
