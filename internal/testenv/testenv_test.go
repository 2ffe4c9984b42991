package testenv

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// recorder is a testing.TB that records how a test would have ended. Skip
// and Fatal end the goroutine as the real ones do.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Skip(args ...any) {
	r.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func record(f func(tb testing.TB)) *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

func TestCI(t *testing.T) {
	for _, c := range []struct {
		val  string
		want bool
	}{{"true", true}, {"1", true}, {"TRUE", true}, {"", false}, {"false", false}, {"0", false}, {"yes", false}} {
		t.Setenv(EnvCI, c.val)
		if got := CI(); got != c.want {
			t.Errorf("CI() with CI=%q = %v, want %v", c.val, got, c.want)
		}
	}
}

func TestSkip(t *testing.T) {
	const msg = "uv is not on PATH: install uv"
	t.Setenv(EnvCI, "")
	r := record(func(tb testing.TB) { Skipf(tb, "%s is not on PATH: install %s", "uv", "uv") })
	if r.skipped != msg || r.failed != "" {
		t.Errorf("Skipf outside CI: skipped %q, failed %q; want skipped %q", r.skipped, r.failed, msg)
	}

	t.Setenv(EnvCI, "true")
	r = record(func(tb testing.TB) { Skip(tb, msg) })
	if r.skipped != "" || !strings.Contains(r.failed, "missing prerequisite") || !strings.Contains(r.failed, msg) {
		t.Errorf("Skip with CI=true: skipped %q, failed %q; want a failure naming %q", r.skipped, r.failed, msg)
	}
}

func TestBitpollMirror(t *testing.T) {
	t.Setenv("BITPOLL_MIRROR", "")
	t.Setenv(EnvCI, "true")
	r := record(func(tb testing.TB) { BitpollMirror(tb) })
	if !strings.Contains(r.failed, "BITPOLL_MIRROR is not set") {
		t.Errorf("BitpollMirror without the variable, CI=true: failed %q, want a failure naming BITPOLL_MIRROR", r.failed)
	}
	t.Setenv("BITPOLL_MIRROR", "/srv/bitpoll.git")
	if got := BitpollMirror(t); got != "/srv/bitpoll.git" {
		t.Errorf("BitpollMirror = %q, want /srv/bitpoll.git", got)
	}
}
