package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The helper process runs one store operation in a child process, so the
// parent can kill it with SIGKILL at an exact point. It is driven by
// environment variables and reports on stdout, one line per event.
const (
	envHelper = "BITPOLL_STORE_HELPER" // "install" or "lock"
	envRoot   = "BITPOLL_STORE_ROOT"
	envArg    = "BITPOLL_STORE_ARG" // install: phase to stop at; lock: timeout
)

// phaseBuilding is a point inside the build function, in the middle of
// writing files; the others are the store's own Phases.
const phaseBuilding = "building"

func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(envHelper)
	if mode == "" {
		t.Skip("helper for TestCrash and TestLockAcrossProcesses; runs only when re-executed by them")
	}
	s, err := Open(Layout{Root: os.Getenv(envRoot)})
	if err != nil {
		t.Fatal(err)
	}
	arg := os.Getenv(envArg)
	switch mode {
	case "install":
		helperInstall(t, s, arg)
	case "lock":
		helperLock(t, s, arg)
	default:
		t.Fatalf("unknown helper mode %q", mode)
	}
}

// stopAt reports reaching phase and waits to be killed.
func stopAt(phase string) {
	fmt.Printf("phase %s\n", phase)
	time.Sleep(time.Hour)
}

func helperInstall(t *testing.T, s *Store, stopPhase string) {
	s.Hooks.At = func(p Phase, _ string) {
		if string(p) == stopPhase {
			stopAt(stopPhase)
		}
	}
	unlock, err := s.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	p, _, err := s.Build(context.Background(), Key("new"), "bitpoll", "2", func(dir string) error {
		for i := range 6 {
			if i == 3 && stopPhase == phaseBuilding {
				stopAt(phaseBuilding)
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", i)), []byte("data"), 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.AddGeneration(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Switch(g.N); err != nil {
		t.Fatal(err)
	}
	fmt.Println("done")
}

func helperLock(t *testing.T, s *Store, timeout string) {
	d, err := time.ParseDuration(timeout)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	fmt.Println("waiting")
	start := time.Now()
	unlock, err := s.Lock(ctx)
	if err != nil {
		fmt.Printf("error: %v\n", err)
		return
	}
	fmt.Printf("acquired after %d ms\n", time.Since(start).Milliseconds())
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
}

// helper starts the test binary as a helper process and returns a reader
// of its stdout lines.
func helper(t *testing.T, mode, root, arg string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
	cmd.Env = append(os.Environ(), envHelper+"="+mode, envRoot+"="+root, envArg+"="+arg)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, bufio.NewScanner(out)
}

// waitLine reads lines until one starts with prefix and returns it.
func waitLine(t *testing.T, sc *bufio.Scanner, prefix string) string {
	t.Helper()
	var seen []string
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, prefix) {
			return l
		}
		seen = append(seen, sc.Text())
	}
	t.Fatalf("helper output ended without a line starting with %q; got %q", prefix, seen)
	return ""
}

// TestCrash kills an install (Build, AddGeneration, Switch) with SIGKILL
// at each phase, checks what is visible, then reruns it to completion.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process per phase; skipped with -short")
	}
	for _, tt := range []struct {
		phase    string
		stored   bool // the new store path is in place
		linked   bool // generation 2 exists
		switched bool // current points at generation 2
	}{
		{phaseBuilding, false, false, false},
		{string(PhaseBuilt), false, false, false},
		{string(PhaseSealed), false, false, false},
		{string(PhaseStored), true, false, false},
		{string(PhaseLinked), true, true, false},
		{string(PhaseSwitching), true, true, false},
		{string(PhaseSwitched), true, true, true},
	} {
		t.Run(tt.phase, func(t *testing.T) {
			s := newStore(t)
			old := mustBuild(t, s, Key("old"), "bitpoll", "1", testFiles)
			if _, err := s.AddGeneration(old); err != nil {
				t.Fatal(err)
			}
			if err := s.Switch(1); err != nil {
				t.Fatal(err)
			}
			root := s.Layout().Root
			final := s.Path(Key("new"), "bitpoll", "2")

			cmd, out := helper(t, "install", root, tt.phase)
			waitLine(t, out, "phase "+tt.phase)
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("helper Wait() = %v, want killed by SIGKILL", err)
			}

			_, err = os.Lstat(final)
			if stored := err == nil; stored != tt.stored {
				t.Errorf("after kill at %s: final path exists = %v, want %v", tt.phase, stored, tt.stored)
			}
			if tt.stored {
				if err := s.Verify(final); err != nil {
					t.Errorf("after kill at %s: %v", tt.phase, err)
				}
			}
			gens, err := s.Generations()
			if err != nil {
				t.Fatal(err)
			}
			if linked := len(gens) == 2; linked != tt.linked || len(gens) == 0 {
				t.Errorf("after kill at %s: %d generations, want generation 2: %v", tt.phase, len(gens), tt.linked)
			}
			for _, g := range gens {
				if err := s.Verify(g.Target); err != nil {
					t.Errorf("after kill at %s: generation %d: %v", tt.phase, g.N, err)
				}
			}
			wantCur := "generations/1"
			if tt.switched {
				wantCur = "generations/2"
			}
			if link, err := os.Readlink(s.Layout().Current()); link != wantCur || err != nil {
				t.Errorf("after kill at %s: Readlink(current) = %q, %v, want %q", tt.phase, link, err, wantCur)
			}

			cmd, out = helper(t, "install", root, "")
			waitLine(t, out, "done")
			drain(out)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("rerun after kill at %s: %v", tt.phase, err)
			}
			g, ok, err := s.CurrentGeneration()
			if !ok || err != nil || g.N != 2 || g.Target != final {
				t.Errorf("after rerun: CurrentGeneration() = %+v, %v, %v, want generation 2 → %q", g, ok, err, final)
			}
			if err := s.Verify(final); err != nil {
				t.Errorf("after rerun: %v", err)
			}
			if gens, err := s.Generations(); len(gens) != 2 || err != nil {
				t.Errorf("after rerun: Generations() = %v, %v, want 2", gens, err)
			}
			if l := leftovers(t, s); len(l) != 0 {
				t.Errorf("after rerun: leftovers = %q, want none", l)
			}
		})
	}
}

// drain reads the rest of the helper's output so it never blocks on a
// full pipe.
func drain(sc *bufio.Scanner) {
	for sc.Scan() {
	}
}

func TestLockAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts helper processes; skipped with -short")
	}
	s := newStore(t)
	unlock, err := s.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	// A waiter whose context ends gives up and names the holder.
	cmd, out := helper(t, "lock", s.Layout().Root, "300ms")
	line := waitLine(t, out, "error: ")
	want := "held by process " + strconv.Itoa(os.Getpid())
	if !strings.Contains(line, want) || !strings.Contains(line, "deadline exceeded") {
		t.Errorf("Lock(ctx with 300ms) while held = %q, want it to contain %q and %q", line, want, "deadline exceeded")
	}
	drain(out)
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}

	// A waiter with time left gets the lock once it is released.
	const hold = 400 * time.Millisecond
	cmd, out = helper(t, "lock", s.Layout().Root, "30s")
	waitLine(t, out, "waiting")
	time.Sleep(hold)
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	line = waitLine(t, out, "acquired after ")
	ms, err := strconv.Atoi(strings.Fields(line)[2])
	if err != nil || time.Duration(ms)*time.Millisecond < hold/2 {
		t.Errorf("Lock(ctx with 30s) while held for %v = %q, want it to wait", hold, line)
	}
	drain(out)
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestLockInProcess(t *testing.T) {
	s := newStore(t)
	unlock, err := s.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// flock(2) locks belong to the open file, so a second Lock in the
	// same process waits too.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.Lock(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second Lock() while held = %v, want context.DeadlineExceeded", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(s.Layout().StoreDir(), ".lock")); len(b) != 0 || err != nil {
		t.Errorf("lock file after unlock = %q, %v, want empty", b, err)
	}
	unlock, err = s.Lock(context.Background())
	if err != nil {
		t.Fatalf("Lock() after unlock = %v, want nil", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
}
