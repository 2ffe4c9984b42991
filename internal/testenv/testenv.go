// Package testenv skips tests whose outside resources are missing: real
// PyPI and a Bitpoll git mirror. It imports nothing of ours, so that the
// tests of any package can use it, resolve's included, which testkit
// itself imports.
package testenv

import (
	"net/http"
	"os"
	"testing"
	"time"
)

// NeedPyPI skips tb under -short, with BITPOLL_OFFLINE set, or when PyPI
// does not answer; what says what the test does with PyPI, as in "talks
// to real PyPI".
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
		tb.Skipf("%s: PyPI is unreachable (%v)", what, err)
	}
	resp.Body.Close()
}

// BitpollMirror is the Bitpoll git mirror named by BITPOLL_MIRROR, or a
// skip.
func BitpollMirror(tb testing.TB) string {
	tb.Helper()
	m := os.Getenv("BITPOLL_MIRROR")
	if m == "" {
		tb.Skip("BITPOLL_MIRROR is not set: point it at a git mirror of github.com/fsinfuhh/Bitpoll to run the real-Bitpoll tests")
	}
	return m
}
