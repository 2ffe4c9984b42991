package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/spf13/cobra"

	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/resolve"
	"github.com/bitpoll-install/bitpoll-install/resolve/index"
	"github.com/bitpoll-install/bitpoll-install/store"
)

type upgradeOptions struct {
	installOptions
	AppVersion string
}

func newUpgradeCommand(g *globalOptions) *cobra.Command {
	var o upgradeOptions
	c := &cobra.Command{
		Use:   "upgrade",
		Short: "Build another lock and switch to it, with no gap in service",
		Long: `Build the new lock's Bitpoll while the current generation keeps serving,
then switch to it as install does: a snapshot of the database, the
migrations run by the new code, the health gate, and the new generation
started on the same listening socket before the old one stops.

The new lock is --lock FILE, or the lock of --app-source DIR at
--app-version, or (with --app-version CONSTRAINT alone) the current
lock's app and targets resolved anew against the index: the change of
each package is shown before anything is built.

Exit codes: 0 switched (or nothing to do), 1 refused or failed (the old
generation still serves), 2 usage error.`,
		Example: `  sudo bitpoll-install upgrade --lock bitpoll.lock
  sudo bitpoll-install upgrade --app-version '~0.11'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runUpgrade(cmd.Context(), g, o)
		},
	}
	o.buildOptions.AddFlags(c)
	o.configOptions.AddFlags(c)
	o.switchOptions.AddFlags(c)
	c.Flags().StringVar(&o.AppVersion, "app-version", "", "re-lock the app at this semver `CONSTRAINT` (\"0.11.0\", \"~0.11\") before upgrading")
	return c
}

func runUpgrade(ctx context.Context, g *globalOptions, o upgradeOptions) error {
	if g.Root == "" && os.Geteuid() != 0 {
		return &usageError{errors.New("upgrade changes /opt/bitpoll and the running service: run it as root, or with --root DIR")}
	}
	st, err := store.Open(store.Layout{Root: g.Root})
	if err != nil {
		return err
	}
	if _, ok, err := st.CurrentGeneration(); err != nil {
		return err
	} else if !ok {
		return errors.New("nothing is installed yet to upgrade: run bitpoll-install install first")
	}
	if o.AppVersion != "" {
		if o.Lock != "" && o.AppSource == "" {
			return &usageError{errors.New("--lock and --app-version say two different things: give one (or --app-source DIR with --app-version for a local tree)")}
		}
		l, err := o.relock(ctx, g)
		if err != nil {
			return err
		}
		o.lock = l
	}
	return runInstall(ctx, g, o.installOptions)
}

// relock resolves the current lock's app anew at --app-version, for the
// same targets and extras, and prints what changes.
func (o *upgradeOptions) relock(ctx context.Context, g *globalOptions) (*lockfile.Lock, error) {
	base, err := o.readLock()
	if err != nil {
		return nil, err
	}
	src := o.AppSource
	if src == "" {
		src = "git::" + resolve.Upstream + ".git"
	}
	idx := g.indexClient(index.Options{CacheDir: g.cacheDir(), UserAgent: "bitpoll-install/" + version, Unpack: o.Unpack})
	l, err := resolve.Lock(ctx, idx, resolve.LockOptions{
		App:     resolve.AppSource{Src: src, Version: o.AppVersion, Unpack: o.Unpack},
		Extra:   base.ExtraRequirements,
		Targets: base.Targets,
		Glibc:   base.Glibc,
		// The source is pinned by this lock's tree, so it installs from
		// the same source too.
		CreatedBy: "bitpoll-install " + version + " upgrade",
	}, newReporter(g))
	if err != nil {
		return nil, fmt.Errorf("re-lock for --app-version %s: %w", o.AppVersion, err)
	}
	// The same targets: the interpreters the lock pins still fit.
	l.Interpreters = base.Interpreters
	rep := newReporter(g)
	for _, line := range lockDiff(base, l) {
		rep.Notef("%s", line)
	}
	return l, nil
}

// lockDiff lists the app's and each package's change between two locks.
func lockDiff(a, b *lockfile.Lock) []string {
	out := []string{fmt.Sprintf("%s %s → %s", b.App.Name, a.App.Version, b.App.Version)}
	old := map[string]string{}
	for _, p := range a.Packages {
		old[p.Name] = p.Version
	}
	seen := map[string]bool{}
	var lines []string
	for _, p := range b.Packages {
		seen[p.Name] = true
		switch v, ok := old[p.Name]; {
		case !ok:
			lines = append(lines, fmt.Sprintf("  + %s %s", p.Name, p.Version))
		case v != p.Version:
			lines = append(lines, fmt.Sprintf("  ~ %s %s → %s", p.Name, v, p.Version))
		}
	}
	for _, p := range a.Packages {
		if !seen[p.Name] {
			lines = append(lines, fmt.Sprintf("  - %s %s", p.Name, p.Version))
		}
	}
	sort.Strings(lines)
	if len(lines) == 0 {
		lines = []string{"  (no package changes)"}
	}
	return append(out, lines...)
}
