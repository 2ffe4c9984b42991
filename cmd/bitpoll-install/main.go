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
	"syscall"
)

// Exit codes, documented in the root command's help.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitFindings = 3 // audit found vulnerabilities
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return execute(ctx, &globalOptions{stdout: stdout, stderr: stderr}, args)
}

// execute is run with the global options made by the caller, so that tests
// can reach the index through an httptest server's TLS client.
func execute(ctx context.Context, g *globalOptions, args []string) int {
	root := newRootCommand(g)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	return reportError(g, err)
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

func reportError(g *globalOptions, err error) int {
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
		writeJSONLine(g.stderr, map[string]any{"message_type": "error", "error": err.Error(), "exit_code": code})
	} else {
		fmt.Fprintf(g.stderr, "bitpoll-install: %v\n", err)
		if code == exitUsage {
			fmt.Fprintln(g.stderr, "Run 'bitpoll-install --help' for usage.")
		}
	}
	return code
}
