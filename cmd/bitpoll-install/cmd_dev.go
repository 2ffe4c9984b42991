package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/serve"
)

// devOptions are the flags of "dev".
type devOptions struct {
	buildOptions
	Port int
}

func newDevCommand(g *globalOptions) *cobra.Command {
	var o devOptions
	c := &cobra.Command{
		Use:   "dev --app-source DIR [-- MANAGE.PY ARGS...]",
		Short: "Hack on a Bitpoll checkout with the locked environment",
		Long: `Run a Bitpoll checkout as it is (your edits included) against the locked
Python environment: with no arguments, migrate its own SQLite database and
run manage.py runserver with autoreload on 127.0.0.1; with arguments after
--, run those manage.py commands in the same ready environment.

The settings shim is written to <project>/settings_local.py if that file is
absent; an existing different file is never overwritten. The database,
media and secrets live in your data directory, one set per checkout.`,
		Example: `  bitpoll-install dev --app-source ~/src/Bitpoll
  bitpoll-install dev --app-source ~/src/Bitpoll -- createsuperuser
  bitpoll-install dev --app-source ~/src/Bitpoll -- makemigrations poll`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDev(cmd.Context(), g, o, args)
		},
	}
	o.AddFlags(c)
	c.Flags().IntVar(&o.Port, "port", 8000, "the TCP `PORT` runserver listens on, on 127.0.0.1")
	return c
}

func runDev(ctx context.Context, g *globalOptions, o devOptions, args []string) error {
	if o.AppSource == "" {
		return &usageError{errors.New("--app-source DIR is required: the checkout to run")}
	}
	if err := checkPort(o.Port); err != nil {
		return err
	}
	checkout, err := filepath.Abs(o.AppSource)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(checkout); err != nil || !fi.IsDir() {
		return fmt.Errorf("--app-source %s is not a directory: give a checkout of the app", o.AppSource)
	}
	layout, err := g.userLayout()
	if err != nil {
		return err
	}
	opts, err := o.installOptions(g, layout)
	if err != nil {
		return err
	}
	// The checkout runs as it is, so only the environment comes from the
	// lock; --app-source is not read by the build then.
	opts.VenvOnly = true
	res, err := install.Build(ctx, opts)
	if err != nil {
		return err
	}
	printBuild(g, res)
	stdout, stderr, flush := g.childOutput("manage.py")
	defer flush()
	return serve.Dev(ctx, res, serve.DevOptions{
		Checkout: checkout, StateDir: serve.DevStateDir(layout.StateDir(), checkout), Port: o.Port, Args: args,
		Stdin: os.Stdin, Stdout: stdout, Stderr: stderr,
	})
}
