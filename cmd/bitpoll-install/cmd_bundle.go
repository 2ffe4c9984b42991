package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/bitpoll-install/bitpoll-install/bundle"
	"github.com/bitpoll-install/bitpoll-install/install"
)

type bundleOptions struct {
	Output    string
	Targets   []string
	Lock      string
	AppSource string
	unpackOptions
}

func newBundleCommand(g *globalOptions) *cobra.Command {
	var o bundleOptions
	c := &cobra.Command{
		Use:   "bundle -o FILE",
		Short: "Write an offline bundle: a lock, its app source and every file it pins",
		Long: `Write one tar file that holds the lock, the app's source tree and every
wheel (and sdist, with its build requirements) the lock pins for the
chosen targets, each checked against the lock on the way in. On a machine
without network, "install --from-bundle FILE" (and upgrade and run) builds
from it alone: it admits only files the lock pins, by size and sha256,
checks the app tree against the lock's, and never connects.`,
		Example: `  bitpoll-install bundle -o bitpoll-0.11.0.bundle --target cp313-x86_64
  bitpoll-install install --from-bundle bitpoll-0.11.0.bundle`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBundle(cmd.Context(), g, o)
		},
	}
	o.unpackOptions.AddFlags(c)
	f := c.Flags()
	f.StringVarP(&o.Output, "output", "o", "", "write the bundle to `FILE` (required)")
	f.StringArrayVar(&o.Targets, "target", nil, "a lock `TARGET` (cp313-x86_64) whose files go in; repeat it; default: every target of the lock")
	f.StringVar(&o.Lock, "lock", "", "the lock to bundle, a `FILE` or an https:// URL (default: the lock built into this binary)")
	f.StringVar(&o.AppSource, "app-source", "", "a local mirror or tree of the app (`DIR`); its content must hash to the lock's tree")
	return c
}

func runBundle(ctx context.Context, g *globalOptions, o bundleOptions) error {
	if o.Output == "" {
		return &usageError{fmt.Errorf("bundle needs -o FILE")}
	}
	if err := o.unpackOptions.check(); err != nil {
		return err
	}
	if err := install.CheckAppSource(o.AppSource); err != nil {
		return err
	}
	l, err := (&buildOptions{Lock: o.Lock}).readLock()
	if err != nil {
		return err
	}
	m, err := bundle.Write(ctx, o.Output, bundle.Options{
		Lock: l, Targets: o.Targets, CacheDir: g.cacheDir(), HTTPClient: g.httpClient, Progress: g.progress(),
		App:       install.App{Source: o.AppSource, Unpack: o.Unpack, Check: appPinsChecker(l)},
		CreatedBy: "bitpoll-install " + version,
	})
	if err != nil {
		return err
	}
	fi, err := os.Stat(o.Output)
	if err != nil {
		return err
	}
	if g.JSON {
		writeJSONLine(g.stdout, map[string]any{"message_type": "bundle", "file": o.Output, "app": m.App, "version": m.Version,
			"targets": m.Targets, "files": len(m.Files), "bytes": fi.Size()})
		return nil
	}
	fmt.Fprintf(g.stdout, "wrote %s: %s %s for %v, %d files, %d MiB\n", o.Output, m.App, m.Version, m.Targets, len(m.Files), fi.Size()>>20)
	return nil
}
