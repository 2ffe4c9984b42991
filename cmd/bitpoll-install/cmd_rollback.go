package main

import (
	"context"
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/service"
	"github.com/bitpoll-install/bitpoll-install/store"
)

type rollbackOptions struct {
	configOptions
	switchOptions
	To              int
	RestoreSnapshot bool
}

func newRollbackCommand(g *globalOptions) *cobra.Command {
	var o rollbackOptions
	c := &cobra.Command{
		Use:   "rollback",
		Short: "Switch back to an earlier generation, reversing its migrations",
		Long: `Switch back to the generation before the current one, or to --to N.

The migrations the older code does not know are reversed first, with the
current (newer) code, which alone has the reverse operations; data
written since the upgrade stays. A migration that cannot give its data
back (RemoveField, DeleteModel, or an irreversible one) is refused by
name, with nothing changed: --restore-snapshot then restores the
snapshot taken before the newer generation's migrations, and keeps the
current database beside it. The older generation passes the same health
gate as an upgrade before it takes traffic, and starts beside the current
one on the same socket (with --restore-snapshot the service stops first).

Exit codes: 0 switched, 1 refused or failed (nothing the users see
changed), 2 usage error.`,
		Example: `  sudo bitpoll-install rollback
  sudo bitpoll-install rollback --to 3
  sudo bitpoll-install rollback --restore-snapshot`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRollback(cmd.Context(), g, o)
		},
	}
	o.configOptions.AddFlags(c)
	o.switchOptions.AddFlags(c)
	c.Flags().IntVar(&o.To, "to", 0, "the generation `N` to switch to (default: the one before current)")
	c.Flags().BoolVar(&o.RestoreSnapshot, "restore-snapshot", false, "restore the database snapshot taken before the current generation's migrations (keeps the current database beside it)")
	return c
}

func runRollback(ctx context.Context, g *globalOptions, o rollbackOptions) error {
	layout := store.Layout{Root: g.Root}
	if g.Root == "" && os.Geteuid() != 0 {
		return &usageError{errors.New("rollback changes /opt/bitpoll and the running service: run it as root, or with --root DIR")}
	}
	if o.To < 0 {
		return &usageError{errors.New("--to takes a generation number (bitpoll-install generations lists them)")}
	}
	cfg, err := loadConfig(g, o.configOptions)
	if err != nil {
		return err
	}
	st, unlock, err := o.lockStore(ctx, g, layout)
	if err != nil {
		return err
	}
	defer unlock()
	// install and upgrade sweep as they build; a rollback builds nothing.
	if n := install.SweepLeftovers(layout); n > 0 {
		newReporter(g).Notef("removed %d leftovers of interrupted runs", n)
	}
	to := o.To
	if to == 0 {
		if to, err = previousGeneration(st); err != nil {
			return err
		}
	}
	meta, err := st.ReadMeta(to)
	if err != nil {
		return err
	}
	io := installOptions{configOptions: o.configOptions, switchOptions: o.switchOptions}
	plan, err := service.PrepareFor(meta.StorePath, io.serviceOptions(g, cfg, layout, g.Root == ""))
	if err != nil {
		return err
	}
	r, err := plan.Rollback(ctx, st, to, o.RestoreSnapshot)
	if err != nil {
		return err
	}
	printSwitch(g, r, nil)
	return nil
}

// previousGeneration is the newest generation older than current.
func previousGeneration(st *store.Store) (int, error) {
	gens, err := st.Generations()
	if err != nil {
		return 0, err
	}
	cur, prev := 0, 0
	for _, g := range gens {
		if g.Current {
			cur = g.N
		}
	}
	if cur == 0 {
		return 0, errors.New("nothing to roll back: there is no current generation (run bitpoll-install install)")
	}
	for _, g := range gens {
		if g.N < cur {
			prev = g.N
		}
	}
	if prev == 0 {
		return 0, errors.New("the current generation is the oldest there is; nothing to roll back to")
	}
	return prev, nil
}
