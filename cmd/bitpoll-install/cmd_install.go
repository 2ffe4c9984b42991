package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	bitpollinstall "github.com/bitpoll-install/bitpoll-install"
	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/progress"
	"github.com/bitpoll-install/bitpoll-install/store"
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

func (o *buildOptions) build(ctx context.Context, g *globalOptions, layout store.Layout) (*install.Result, error) {
	l, err := o.readLock()
	if err != nil {
		return nil, err
	}
	return install.Build(ctx, install.Options{
		Lock: l, Layout: layout, Python: o.Python, AppSource: o.AppSource, OnlyBinary: o.OnlyBinary,
		Progress: progress.New(g.stderr, g.JSON),
	})
}

func newInstallCommand(g *globalOptions) *cobra.Command {
	var o buildOptions
	c := &cobra.Command{
		Use:   "install",
		Short: "Build the locked Bitpoll into the store and make it the current generation",
		Long: `Build the locked Bitpoll into the content-addressed store under
/opt/bitpoll/store (or --root DIR), verified byte for byte against the lock,
and point /opt/bitpoll/current at a new generation of it.

The build happens under a temporary name and is renamed into place, so an
interrupted install leaves nothing half-made and the current generation
untouched. Installing the same lock with the same Python again reuses the
store path.`,
		Example: `  sudo bitpoll-install install
  bitpoll-install install --root /tmp/trial --lock bitpoll.lock --app-source ~/src/Bitpoll`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInstall(cmd.Context(), g, o)
		},
	}
	o.AddFlags(c)
	return c
}

func runInstall(ctx context.Context, g *globalOptions, o buildOptions) error {
	layout := store.Layout{Root: g.Root}
	res, err := o.build(ctx, g, layout)
	if err != nil {
		return err
	}
	gen, switched, err := install.Activate(ctx, layout, res.Path)
	if err != nil {
		return err
	}
	if g.JSON {
		writeJSONLine(g.stdout, map[string]any{"message_type": "summary", "store_path": res.Path, "built": res.Built, "generation": gen.N, "switched": switched, "python": res.Interp.String(), "target": res.Target.String()})
		return nil
	}
	verb := "reused"
	if res.Built {
		verb = "built"
	}
	fmt.Fprintf(g.stdout, "%s %s\n", verb, res.Path)
	if switched {
		fmt.Fprintf(g.stdout, "generation %d is now current\n", gen.N)
	} else {
		fmt.Fprintf(g.stdout, "generation %d was already current\n", gen.N)
	}
	return nil
}
