package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/serve"
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
	// Before the build, so that a busy port costs no wait; serve.Run opens
	// the socket again for gunicorn.
	ln, err := serve.Listen("127.0.0.1", o.Port)
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
	printBuild(g, res)
	rep := newReporter(g)
	var flushes []func()
	defer func() {
		for _, f := range flushes {
			f()
		}
	}()
	return serve.Run(ctx, res, serve.Options{
		Port: o.Port, Workers: o.Workers, StateDir: layout.StateDir(), Secrets: layout.SecretsDir(),
		Stdout: g.stdout, Stderr: g.stderr,
		Output: func(source string) (io.Writer, io.Writer) {
			stdout, stderr, flush := g.childOutput(source)
			flushes = append(flushes, flush)
			return stdout, stderr
		},
		Log: func(msg string) { rep.Notef("%s", msg) },
		Ready: func(url string) {
			if g.JSON {
				writeJSONLine(g.stdout, readyRecord{"ready", url})
			} else {
				fmt.Fprintf(g.stderr, "Bitpoll is serving on %s (Ctrl-C stops it)\n", url)
			}
		},
	})
}

type readyRecord struct {
	MessageType string `json:"message_type"` // "ready"
	URL         string `json:"url"`
}

// buildRecord is what run and dev built, before they serve.
type buildRecord struct {
	MessageType string           `json:"message_type"` // "build"
	StorePath   string           `json:"store_path"`
	Built       bool             `json:"built"`
	Packages    int              `json:"packages_installed"` // 0 when the store had the path
	Python      string           `json:"python"`
	Target      string           `json:"target"`
	PhasesMS    map[string]int64 `json:"phases_ms"`
	Seconds     float64          `json:"seconds"`
}

// printBuild says which store path serves, and how long each step took.
func printBuild(g *globalOptions, res *install.Result) {
	phases := g.clock.buildPhases()
	if g.JSON {
		writeJSONLine(g.stdout, buildRecord{"build", res.Path, res.Built, res.Packages, res.Interp.String(), res.Target.String(),
			phasesMS(phases, nil), g.clock.elapsed().Seconds()})
		return
	}
	verb := "reused " + res.Path
	if res.Built {
		verb = "built " + res.Path
	}
	if line := installedLine(res, phases); line != "" {
		fmt.Fprintln(g.stderr, line)
	}
	fmt.Fprintln(g.stderr, summary(verb, g.clock.elapsed(), phases, nil))
}
