package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/bitpoll-install/bitpoll-install/atomicfile"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/pyspec/wheeltag"
)

// exportOptions are the flags of "export pylock".
type exportOptions struct {
	Lock   string
	Target string
	Output string
}

func (o *exportOptions) AddFlags(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&o.Lock, "lock", "", "the lock `FILE` (or https:// URL) to export (default: the lock install uses, built into this binary)")
	f.StringVar(&o.Target, "target", "", "the `TARGET` to export, as in the lock's targets (cp313-x86_64); may be left out when the lock has only one")
	f.StringVarP(&o.Output, "output", "o", "-", "write to `FILE` (- for standard output)")
}

func newExportCommand(g *globalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "export",
		Short: "Export the lock in other formats",
	}
	var o exportOptions
	pylock := &cobra.Command{
		Use:   "pylock",
		Short: "Write a PEP 751 pylock.toml for one target",
		Long: `Write a standard PEP 751 lock (pylock.toml) with the wheels of one target,
so that uv or pip can install exactly the set that bitpoll-install installs.
Packages needed only to build an sdist are left out.`,
		Example: `  bitpoll-install export pylock --target cp313-x86_64 -o pylock.toml
  uv pip install --python 3.13 -r pylock.toml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runExportPylock(cmd.Context(), g, o)
		},
	}
	o.AddFlags(pylock)
	// The targets of the lock --lock names (so far on the command line).
	_ = pylock.RegisterFlagCompletionFunc("target", completeTargets(func() []string {
		l, err := (&buildOptions{Lock: o.Lock}).readLock()
		if err != nil {
			return nil
		}
		return l.Targets
	}))
	c.AddCommand(pylock)
	return c
}

func runExportPylock(_ context.Context, g *globalOptions, o exportOptions) error {
	l, err := (&buildOptions{Lock: o.Lock}).readLock()
	if err != nil {
		return err
	}
	if o.Lock == "" {
		o.Lock = "the built-in bitpoll.lock"
	}
	if o.Target == "" {
		if len(l.Targets) != 1 {
			return &usageError{fmt.Errorf("--target is required: the lock has several targets, one of %v", l.Targets)}
		}
		o.Target = l.Targets[0]
	}
	glibc, err := wheeltag.ParseGlibc(l.Glibc)
	if err != nil {
		return fmt.Errorf("%s: glibc: %w", o.Lock, err)
	}
	t, err := wheeltag.ParseTarget(o.Target, glibc)
	if err != nil {
		return &usageError{fmt.Errorf("--target: %w", err)}
	}
	found := false
	for _, name := range l.Targets {
		found = found || name == t.String()
	}
	if !found {
		return &usageError{fmt.Errorf("--target %s is not in %s: it covers %v", t, o.Lock, l.Targets)}
	}
	data, err := lockfile.ExportPylock(l, t)
	if err != nil {
		return fmt.Errorf("export %s for %s: %w", o.Lock, t, err)
	}
	if o.Output == "-" {
		if g.JSON {
			writeJSONLine(g.stdout, exportRecord{"export", nil, t.String(), optional(string(data))})
			return nil
		}
		_, err = g.stdout.Write(data)
		return err
	}
	if err := atomicfile.Write(o.Output, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", o.Output, err)
	}
	if g.JSON {
		writeJSONLine(g.stdout, exportRecord{"export", optional(o.Output), t.String(), nil})
	} else {
		fmt.Fprintf(g.stderr, "wrote %s for %s\n", o.Output, t)
	}
	return nil
}

// exportRecord is the pylock.toml written to File, or carried in Text
// with -o -.
type exportRecord struct {
	MessageType string  `json:"message_type"` // "export"
	File        *string `json:"file"`
	Target      string  `json:"target"`
	Text        *string `json:"text"`
}
