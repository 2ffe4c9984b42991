package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/store"
	"github.com/bitpoll-install/bitpoll-install/treehash"
)

// envCrashPhase makes TestCrashHelper run the command line in
// envCrashArgs (a JSON array) and SIGKILL itself when the install reaches
// the phase.
const (
	envCrashPhase = "BITPOLL_CRASH_PHASE"
	envCrashArgs  = "BITPOLL_CRASH_ARGS"
)

func TestCrashHelper(t *testing.T) {
	phase := os.Getenv(envCrashPhase)
	if phase == "" {
		t.Skip("helper for TestInstallKilledAtEachPhase; runs only when re-executed by it")
	}
	g := &globalOptions{stdout: os.Stdout, stderr: os.Stderr}
	// "PHASE@NAME" kills at PHASE only for the file named NAME.
	want, file, _ := strings.Cut(phase, "@")
	g.hooks.At = func(p store.Phase, path string) {
		if string(p) == want && (file == "" || filepath.Base(path) == file) {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Minute) // the signal arrives first
		}
	}
	var args []string
	if err := json.Unmarshal([]byte(os.Getenv(envCrashArgs)), &args); err != nil {
		t.Fatalf("%s: %v", envCrashArgs, err)
	}
	code := execute(context.Background(), g, args)
	t.Fatalf("the install ended with exit code %d before reaching phase %q", code, phase)
}

// TestInstallKilledAtEachPhase runs `install` of a new app tree over a
// current generation and kills it with SIGKILL as it reaches each phase of
// the build, the store and the switch. After every kill no partial path is
// a generation, every generation verifies, and current has not moved,
// except after the switch itself, where it points at the complete new
// path. A rerun then completes and makes the new path current.
func TestInstallKilledAtEachPhase(t *testing.T) {
	testkit.NeedNetwork(t)
	it := testkit.HostPython(t)
	base := testkit.LockFixture(t, testkit.Target(it))
	root := t.TempDir()
	layout := store.Layout{Root: root}
	installArgs := func(lock, src string) []string {
		return []string{"--root", root, "install", "--lock", lock, "--app-source", src, "--python", it.Path}
	}
	var out bytes.Buffer
	if code := run(context.Background(), installArgs(testkit.WriteLock(t, base), testkit.FixtureApp()), &out, &out); code != exitOK {
		t.Fatalf("first install: exit %d\n%s", code, out.String())
	}

	phases := []store.Phase{
		install.PhaseFetchApp, install.PhaseFetchFiles, install.PhaseVenv, install.PhaseWheels,
		install.PhaseCompile, install.PhasePrepareApp, install.PhaseManifest,
		store.PhaseBuilt, store.PhaseSealed, store.PhaseStored,
		store.PhaseLinked, store.PhaseSwitching, store.PhaseSwitched,
	}
	for _, phase := range phases {
		t.Run(string(phase), func(t *testing.T) {
			// A tree of its own per phase, so that each run builds anew.
			src := t.TempDir()
			if err := os.CopyFS(src, os.DirFS(testkit.FixtureApp())); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(src, "fixtureapp", "crash_phase.txt"), []byte(phase), 0o644); err != nil {
				t.Fatal(err)
			}
			l := *base
			tree, err := treehash.GitTree(src)
			if err != nil {
				t.Fatal(err)
			}
			l.App.Tree = tree
			lock := testkit.WriteLock(t, &l)
			args := installArgs(lock, src)

			before := currentTarget(t, layout)
			killedAt(t, phase, args)
			checkStore(t, layout)
			after := currentTarget(t, layout)
			switch {
			case phase == store.PhaseSwitched:
				if after == before {
					t.Errorf("after a kill at %s, current still -> %s, want the new path (the rename had happened)", phase, before)
				}
			case after != before:
				t.Errorf("after a kill at %s, current -> %s, want it unmoved at %s", phase, after, before)
			}

			out.Reset()
			if code := run(context.Background(), args, &out, &out); code != exitOK {
				t.Fatalf("rerun after a kill at %s: exit %d\n%s", phase, code, out.String())
			}
			checkStore(t, layout)
			checkNoLeftovers(t, root)
			final := currentTarget(t, layout)
			if final == before {
				t.Errorf("after the rerun, current -> %s, the old path; want the new one", final)
			}
			if data, err := os.ReadFile(filepath.Join(final, install.AppDir, "fixtureapp", "crash_phase.txt")); err != nil || string(data) != string(phase) {
				t.Errorf("current's app has crash_phase.txt = %q (%v), want %q", data, err, phase)
			}
		})
	}
}

// killedAt runs args in a child that kills itself at phase, and fails
// unless the child died of SIGKILL.
func killedAt(t *testing.T, phase store.Phase, args []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashHelper$", "-test.v")
	argv, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), envCrashPhase+"="+string(phase), envCrashArgs+"="+string(argv))
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("the install to be killed at %s: %v, want death by SIGKILL\n%s", phase, err, out)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the install to be killed at %s ended with %v, want death by SIGKILL (the phase was never reached?)\n%s", phase, err, out)
	}
}

// currentTarget is the store path current resolves to.
func currentTarget(t *testing.T, l store.Layout) string {
	t.Helper()
	p, err := filepath.EvalSymlinks(l.Current())
	if err != nil {
		t.Fatalf("resolve current: %v", err)
	}
	return p
}

// checkStore fails if a generation is a partial path or does not verify.
func checkStore(t *testing.T, l store.Layout) {
	t.Helper()
	st, err := store.Open(l)
	if err != nil {
		t.Fatal(err)
	}
	gens, err := st.Generations()
	if err != nil {
		t.Fatalf("list generations: %v", err)
	}
	for _, g := range gens {
		if strings.Contains(g.Target, ".partial") {
			t.Errorf("generation %d -> %s, a partial path", g.N, g.Target)
			continue
		}
		if err := st.Verify(g.Target); err != nil {
			t.Errorf("generation %d -> %s does not verify: %v", g.N, g.Target, err)
		}
	}
}

// checkNoLeftovers fails for every temporary or partial entry under root:
// after a good rerun the sweep has removed what the killed run left.
func checkNoLeftovers(t *testing.T, root string) {
	t.Helper()
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		name := d.Name()
		for _, mark := range []string{".partial-", ".tmp-", ".named-", ".build-", "bitpoll-build-"} {
			if strings.Contains(name, mark) {
				t.Errorf("%s is left after the rerun", p)
				if d.IsDir() {
					return filepath.SkipDir
				}
			}
		}
		return nil
	})
}
