package install

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestPythonNoSpace: a Python program that ran out of disk is reported
// as a full disk at the path it names (or at what it writes), without its
// traceback; other failures keep their output.
func TestPythonNoSpace(t *testing.T) {
	dir := t.TempDir()
	exit := &exec.ExitError{}
	traceback := "Traceback (most recent call last):\n  File \"manage.py\", line 22, in <module>\nOSError: [Errno 28] No space left on device: '" + dir + "/static/a.css'\n"
	err := NoSpace(fmt.Errorf("build: %w", pythonFailure("manage.py collectstatic --noinput", dir+"/static", exit, []byte(traceback))))
	var ns *NoSpaceError
	if !errors.As(err, &ns) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("NoSpace(collectstatic out of space) = %v, want a *NoSpaceError", err)
	}
	if ns.Path != dir+"/static/a.css" || ns.Mount == "" || strings.Contains(err.Error(), "Traceback") {
		t.Errorf("NoSpace = %+v: %q; want the path Python named, its mount point, and no traceback", ns, err)
	}
	// Python names no file: what the program writes stands in.
	err = NoSpace(pythonFailure("compress static files", dir, exit, []byte("OSError: [Errno 28] No space left on device\n")))
	if !errors.As(err, &ns) || ns.Path != dir {
		t.Errorf("NoSpace(no path named) = %v, want the written directory %s", err, dir)
	}
	// Anything else is left as it was, with the output's tail.
	other := pythonFailure("manage.py collectstatic --noinput", dir, exit, []byte("ImproperlyConfigured: STATIC_ROOT\n"))
	if got := NoSpace(other); got != other || !strings.Contains(got.Error(), "ImproperlyConfigured") {
		t.Errorf("NoSpace(another failure) = %v, want it unchanged with its output", got)
	}
}
