// Command bitpoll-install locks, installs and runs Bitpoll reproducibly.
//
// This package holds only the command line: each command lives in its own
// cmd_<name>.go with an options struct and a plain run function that tests
// call directly. The logic is in the packages beside it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// Exit codes, documented in the root command's help.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitFindings = 3 // audit found vulnerabilities, verify a changed store
	// exitInterrupted is the shell's code for a process ended by SIGINT
	// (128+2), for a command that stops early on Ctrl-C or SIGTERM.
	exitInterrupted = 130
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, &globalOptions{stdout: os.Stdout, stderr: os.Stderr, hooks: phaseHooks()}, os.Args[1:])
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return execute(ctx, &globalOptions{stdout: stdout, stderr: stderr}, args)
}

// lockedWriter makes each Write whole: the progress reporter, the phase
// lines and child processes' output write lines from several goroutines.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

// Fd is the file's descriptor, so that the progress bar still finds
// its terminal; an invalid one for other writers.
func (l lockedWriter) Fd() uintptr {
	if f, ok := l.w.(*os.File); ok {
		return f.Fd()
	}
	return ^uintptr(0)
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// execute is run with the global options made by the caller, so that tests
// can reach the index through an httptest server's TLS client.
func execute(ctx context.Context, g *globalOptions, args []string) int {
	// One lock for both: in a terminal they are the same screen.
	mu := &sync.Mutex{}
	g.stdout, g.stderr = lockedWriter{mu, g.stdout}, lockedWriter{mu, g.stderr}
	root := newRootCommand(g)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	help := root.CommandPath()
	if cmd != nil {
		help = cmd.CommandPath() // a usage error points at this command's --help
	}
	if ctx.Err() != nil {
		// Whatever failed after the interrupt failed because of it: the
		// cancelled fetch, the killed compiler. Say what state is left.
		return reportInterrupt(g)
	}
	return reportError(g, err, help)
}

// reportInterrupt tells what an interrupted command left: current where
// it was, or moved by this command.
func reportInterrupt(g *globalOptions) int {
	msg := "interrupted; nothing was switched; run it again to continue"
	for _, c := range g.currentLinks() {
		if before, ok := g.currentBefore[c.path]; ok && c.target != before {
			msg = fmt.Sprintf("interrupted after %s was switched to %s; run it again to finish", c.path, c.target)
		}
	}
	if g.JSON {
		writeJSONLine(g.stdout, errorRecord{"error", msg, exitInterrupted})
	} else {
		fmt.Fprintf(g.stderr, "bitpoll-install: %s\n", msg)
	}
	return exitInterrupted
}

// currentLink is where one layout's current link points ("" when absent).
type currentLink struct{ path, target string }

// currentLinks reads the current links of the layouts a command may
// switch: the system one (under --root) and the user one of run and dev.
func (g *globalOptions) currentLinks() []currentLink {
	var out []currentLink
	layouts := []store.Layout{{Root: g.Root}}
	if l, err := g.userLayout(); err == nil && l != layouts[0] {
		layouts = append(layouts, l)
	}
	for _, l := range layouts {
		target, _ := os.Readlink(l.Current())
		out = append(out, currentLink{l.Current(), target})
	}
	return out
}

// usageError marks a mistake in the command line itself.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// exitError carries an exit code other than failure, with a message that
// may be empty when the command already said everything.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// reportError prints err and returns its exit code; a usage error points
// at help's --help.
func reportError(g *globalOptions, err error, help string) int {
	// A full disk, wherever it struck: name the file system and the fix.
	err = install.NoSpace(err)
	code := exitFailure
	var ue *usageError
	var ee *exitError
	switch {
	case errors.As(err, &ue):
		code = exitUsage
	case errors.As(err, &ee):
		code = ee.code
		if ee.msg == "" {
			return code
		}
	}
	if g.JSON {
		writeJSONLine(g.stdout, errorRecord{"error", err.Error(), code})
	} else {
		fmt.Fprintf(g.stderr, "bitpoll-install: %v\n", err)
		if code == exitUsage {
			fmt.Fprintf(g.stderr, "Run '%s --help' for usage.\n", help)
		}
	}
	return code
}
