// Package testenv decides what a test does when an outside prerequisite
// is missing: real PyPI, a Bitpoll git mirror, a tool on the PATH, a root
// file system. Outside CI it skips, with a message that says how to supply
// the prerequisite; with CI=true it fails and names what is missing, so
// that CI never passes by skipping. It imports nothing of ours, so that
// the tests of any package can use it, resolve's included, which testkit
// itself imports.
package testenv

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"
)

// EnvCI is the variable that CI services set to "true".
const EnvCI = "CI"

// CI reports whether $CI holds a true value ("true", "1", ...): the tests
// run in CI, where every prerequisite must be present.
func CI() bool {
	ci, err := strconv.ParseBool(os.Getenv(EnvCI))
	return err == nil && ci
}

// Skip skips tb because a prerequisite is missing; msg says which and how
// to supply it. With CI=true it fails tb instead.
func Skip(tb testing.TB, msg string) {
	tb.Helper()
	if CI() {
		tb.Fatalf("missing prerequisite (CI=true, so this fails instead of skipping): %s", msg)
	}
	tb.Skip(msg)
}

// Skipf is Skip with a format.
func Skipf(tb testing.TB, format string, args ...any) {
	tb.Helper()
	Skip(tb, fmt.Sprintf(format, args...))
}

// NeedPyPI skips tb under -short or with BITPOLL_OFFLINE set, both
// deliberate, and when PyPI does not answer, which with CI=true fails tb;
// what says what the test does with PyPI, as in "talks to real PyPI".
func NeedPyPI(tb testing.TB, what string) {
	tb.Helper()
	if testing.Short() {
		tb.Skip(what + ": skipped under -short")
	}
	if os.Getenv("BITPOLL_OFFLINE") != "" {
		tb.Skip(what + ": skipped because BITPOLL_OFFLINE is set")
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("https://pypi.org/simple/pip/")
	if err != nil {
		Skipf(tb, "%s: PyPI is unreachable (%v)", what, err)
	}
	resp.Body.Close()
}

// BitpollMirror is the Bitpoll git mirror named by BITPOLL_MIRROR, or a
// Skip.
func BitpollMirror(tb testing.TB) string {
	tb.Helper()
	m := os.Getenv("BITPOLL_MIRROR")
	if m == "" {
		Skip(tb, "BITPOLL_MIRROR is not set: point it at a git mirror of github.com/fsinfuhh/Bitpoll to run the real-Bitpoll tests (make test sets it from ../shared/fixtures/bitpoll-mirror.tar when that file exists)")
	}
	return m
}
