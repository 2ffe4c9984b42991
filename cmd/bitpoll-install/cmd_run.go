package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// runOptions are the flags of "run".
type runOptions struct {
	buildOptions
	Port    int
	Workers int
}

func newRunCommand(g *globalOptions) *cobra.Command {
	var o runOptions
	c := &cobra.Command{
		Use:   "run",
		Short: "Serve Bitpoll on 127.0.0.1 with SQLite, in the foreground, without root",
		Long: `Build the locked Bitpoll into a store in your data directory
(~/.local/share/bitpoll-install, or --root DIR), generate its secrets,
migrate its SQLite database and serve it with gunicorn on 127.0.0.1 until
interrupted. A second run reuses the store and starts in seconds.`,
		Example: `  bitpoll-install run
  bitpoll-install run --port 8080 --lock bitpoll.lock --app-source ~/src/Bitpoll`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRun(cmd.Context(), g, o)
		},
	}
	o.AddFlags(c)
	c.Flags().IntVar(&o.Port, "port", 8000, "the TCP `PORT` to serve on, on 127.0.0.1")
	c.Flags().IntVar(&o.Workers, "workers", 2, "the number of gunicorn worker processes")
	return c
}

// checkPort refuses a --port that is no TCP port.
func checkPort(port int) error {
	if port < 1 || port > 65535 {
		return &usageError{fmt.Errorf("--port %d is out of range: give 1 to 65535", port)}
	}
	return nil
}

func runRun(ctx context.Context, g *globalOptions, o runOptions) error {
	if err := checkPort(o.Port); err != nil {
		return err
	}
	// Before the build, so that a busy port costs no wait; Serve opens
	// the socket again for gunicorn.
	ln, err := install.Listen("127.0.0.1", o.Port)
	if err != nil {
		return err
	}
	ln.Close()
	layout, err := g.userLayout()
	if err != nil {
		return err
	}
	res, err := o.build(ctx, g, layout)
	if err != nil {
		return err
	}
	if _, _, err := store.Activate(ctx, layout, res.Path, g.hooks); err != nil {
		return err
	}
	return install.Serve(ctx, res, install.ServeOptions{
		Port: o.Port, Workers: o.Workers, StateDir: layout.StateDir(), Secrets: layout.SecretsDir(),
		Stdout: g.stdout, Stderr: g.stderr,
		Ready: func(url string) {
			if g.JSON {
				writeJSONLine(g.stderr, map[string]any{"message_type": "ready", "url": url})
			} else {
				fmt.Fprintf(g.stderr, "Bitpoll is serving on %s (Ctrl-C stops it)\n", url)
			}
		},
	})
}
