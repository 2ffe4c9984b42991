package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// TestInterruptedRun: Ctrl-C (the command's context cancelled) while run
// builds is reported as an interrupt that switched nothing, exit 130, not
// as the "context canceled" of whatever step it stopped, in text and in
// JSON.
func TestInterruptedRun(t *testing.T) {
	it, app, l := fixtureSmallLock(t)
	var pkgs []lockfile.Package
	for i, nv := range [][2]string{{"asgiref", "3.13.0"}, {"django", "5.2.19"}, {"sqlparse", "0.6.1"}, {"whitenoise", "6.12.0"}} {
		name := nv[0] + "-" + nv[1] + "-py3-none-any.whl"
		pkgs = append(pkgs, lockfile.Package{Name: nv[0], Version: nv[1], Wheels: []lockfile.File{{
			Name: name, URL: "https://files.example.invalid/" + name, Size: 100, SHA256: strings.Repeat("3", 63) + string(rune('0'+i)),
		}}})
	}
	l.Packages = pkgs
	path := writeLock(t, t.TempDir(), l)
	for _, jsonOut := range []bool{false, true} {
		root := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		var stdout, stderr bytes.Buffer
		g := &globalOptions{stdout: &stdout, stderr: &stderr}
		g.hooks.At = func(p store.Phase, _ string) {
			if p == install.PhaseFetchFiles {
				cancel() // as the signal context does on Ctrl-C
			}
		}
		args := []string{"--root", root, "run", "--lock", path, "--app-source", app, "--python", it.Path}
		if jsonOut {
			args = append([]string{"--json"}, args...)
		}
		code := execute(ctx, g, args)
		cancel()
		const want = "interrupted; nothing was switched; run it again to continue"
		if code != exitInterrupted {
			t.Errorf("interrupted run (json %v) = exit %d, want %d\n%s", jsonOut, code, exitInterrupted, stderr.String())
		}
		msg := stderr.String()
		if jsonOut {
			checkJSONOutput(t, args, stdout.String(), stderr.String())
			msg = checkJSONError(t, stdout.String(), exitInterrupted)
		}
		if !strings.Contains(msg, want) || strings.Contains(msg, "context canceled") {
			t.Errorf("interrupted run (json %v) said %q, want %q and no \"context canceled\"", jsonOut, stderr.String(), want)
		}
		if _, err := os.Lstat(filepath.Join(root, "opt", "bitpoll", "current")); err == nil {
			t.Errorf("the interrupted run made current")
		}
	}
}

// TestRunBusyPort: run on a port another server holds says so before it
// builds anything, instead of announcing the other server as Bitpoll.
func TestRunBusyPort(t *testing.T) {
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	port := other.Addr().(*net.TCPAddr).Port
	root := t.TempDir()
	path := writeLock(t, t.TempDir(), smallLock())
	r := runCLI(t, "--root", root, "run", "--lock", path, "--app-source", testkit.FixtureApp(), "--port", strconv.Itoa(port))
	want := fmt.Sprintf("port %d on 127.0.0.1 is in use by another program (see which: ss -ltnp 'sport = :%d'): stop it, or give another --port", port, port)
	if r.code != exitFailure || !strings.Contains(r.stderr, want) || strings.Contains(r.stderr, "serving") {
		t.Errorf("run on a busy port = %d, %q; want %d and %q", r.code, r.stderr, exitFailure, want)
	}
	if m, _ := filepath.Glob(filepath.Join(root, "opt", "bitpoll", "*")); len(m) != 0 {
		t.Errorf("run on a busy port built %q first", m)
	}
}

// TestInterruptedLate interrupts run later than TestInterruptedRun: while
// the bytecode compiler runs (whose killed child used to surface as "EOF
// (signal: killed)"), and just after current moved, which must say that
// it moved and that a rerun finishes.
func TestInterruptedLate(t *testing.T) {
	testkit.NeedNetwork(t)
	it := testkit.HostPython(t)
	lock := testkit.WriteLock(t, testkit.LockFixture(t, testkit.Target(it)))
	for _, c := range []struct {
		name  string
		at    store.Phase
		delay time.Duration
		want  string
	}{
		{"compiling", install.PhaseCompile, 300 * time.Millisecond, "interrupted; nothing was switched; run it again to continue"},
		{"switched", store.PhaseSwitched, 0, "was switched to "},
	} {
		t.Run(c.name, func(t *testing.T) {
			// A tree of its own, so that the build runs and is not reused.
			src := t.TempDir()
			if err := os.CopyFS(src, os.DirFS(testkit.FixtureApp())); err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stdout, stderr bytes.Buffer
			g := &globalOptions{stdout: &stdout, stderr: &stderr}
			g.hooks.At = func(p store.Phase, _ string) {
				if p == c.at {
					time.AfterFunc(c.delay, cancel) // as the signal context does on Ctrl-C
				}
			}
			code := execute(ctx, g, []string{"--root", root, "run", "--lock", lock, "--app-source", src, "--python", it.Path, "--port", strconv.Itoa(testkit.FreePort(t))})
			msg := stderr.String()
			if code != exitInterrupted || !strings.Contains(msg, c.want) {
				t.Errorf("run interrupted at %s = exit %d, said:\n%s\nwant exit %d and %q", c.at, code, msg, exitInterrupted, c.want)
			}
			for _, bad := range []string{"context canceled", "signal: killed", "EOF"} {
				if strings.Contains(msg, bad) {
					t.Errorf("run interrupted at %s said %q, which leaks %q", c.at, msg, bad)
				}
			}
		})
	}
}
