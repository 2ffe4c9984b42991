package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestGenerations(t *testing.T) {
	s := newStore(t)
	if gens, err := s.Generations(); len(gens) != 0 || err != nil {
		t.Fatalf("Generations() of a new store = %v, %v, want none", gens, err)
	}
	if g, ok, err := s.CurrentGeneration(); ok || err != nil {
		t.Fatalf("CurrentGeneration() of a new store = %v, %v, %v, want not ok", g, ok, err)
	}
	a := mustBuild(t, s, Key("a"), "bitpoll", "1", testFiles)
	b := mustBuild(t, s, Key("b"), "bitpoll", "2", testFiles)
	for i, tt := range []struct {
		path  string
		wantN int
	}{
		{a, 1},
		{a, 1}, // the newest already points at a: no duplicate
		{b, 2},
		{a, 3}, // going back to a after b is a new generation
	} {
		g, err := s.AddGeneration(tt.path)
		if err != nil || g.N != tt.wantN || g.Target != tt.path {
			t.Errorf("step %d: AddGeneration(%q) = %d → %q, %v, want %d → %q", i, filepath.Base(tt.path), g.N, g.Target, err, tt.wantN, tt.path)
		}
	}
	link, err := os.Readlink(filepath.Join(s.Layout().GenerationsDir(), "2"))
	if want := "../store/" + filepath.Base(b); link != want || err != nil {
		t.Errorf("Readlink(generations/2) = %q, %v, want %q", link, err, want)
	}

	if err := s.Switch(2); err != nil {
		t.Fatal(err)
	}
	if link, err := os.Readlink(s.Layout().Current()); link != "generations/2" || err != nil {
		t.Errorf("Readlink(current) = %q, %v, want %q", link, err, "generations/2")
	}
	g, ok, err := s.CurrentGeneration()
	if !ok || err != nil || g.N != 2 || g.Target != b || !g.Current {
		t.Errorf("CurrentGeneration() = %+v, %v, %v, want generation 2 → %q, current", g, ok, err, b)
	}
	gens, err := s.Generations()
	if err != nil {
		t.Fatal(err)
	}
	want := []Generation{{N: 1, Target: a}, {N: 2, Target: b, Current: true}, {N: 3, Target: a}}
	if len(gens) != len(want) {
		t.Fatalf("Generations() = %v, want %v", gens, want)
	}
	for i, g := range gens {
		if g.N != want[i].N || g.Target != want[i].Target || g.Current != want[i].Current || g.Created.IsZero() {
			t.Errorf("Generations()[%d] = %+v, want %+v with a creation time", i, g, want[i])
		}
	}
	if _, err := os.Stat(filepath.Join(s.Layout().Current(), "app/manage.py")); err != nil {
		t.Errorf("Stat(current/app/manage.py) = %v, want it reachable through the links", err)
	}
}

func TestGenerationsIgnoresOtherNames(t *testing.T) {
	s := newStore(t)
	a := mustBuild(t, s, Key("a"), "bitpoll", "1", testFiles)
	for _, name := range []string{"01", "0", "-1", "2.tmp", "x"} {
		if err := os.Symlink("../store/"+filepath.Base(a), filepath.Join(s.Layout().GenerationsDir(), name)); err != nil {
			t.Fatal(err)
		}
	}
	gens, err := s.Generations()
	if len(gens) != 0 || err != nil {
		t.Errorf("Generations() with only non-canonical names = %v, %v, want none", gens, err)
	}
	if g, err := s.AddGeneration(a); g.N != 1 || err != nil {
		t.Errorf("AddGeneration(a) = %d, %v, want 1", g.N, err)
	}
}

func TestAddGenerationRefusesNonStorePaths(t *testing.T) {
	s := newStore(t)
	a := mustBuild(t, s, Key("a"), "bitpoll", "1", testFiles)
	partial := s.Path(Key("p"), "bitpoll", "1") + partialInfix + "x"
	if err := writeFiles(partial, testFiles); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{partial, filepath.Join(a, "app"), t.TempDir()} {
		if g, err := s.AddGeneration(p); err == nil {
			t.Errorf("AddGeneration(%q) = %d, nil, want an error", p, g.N)
		}
	}
	if gens, err := s.Generations(); len(gens) != 0 || err != nil {
		t.Errorf("Generations() after refusals = %v, %v, want none", gens, err)
	}
}

func TestSwitchErrors(t *testing.T) {
	s := newStore(t)
	a := mustBuild(t, s, Key("a"), "bitpoll", "1", testFiles)
	if _, err := s.AddGeneration(a); err != nil {
		t.Fatal(err)
	}
	if err := s.Switch(1); err != nil {
		t.Fatal(err)
	}
	if err := s.Switch(9); err == nil || !strings.Contains(err.Error(), "no generation 9") {
		t.Errorf("Switch(9) = %v, want an error containing %q", err, "no generation 9")
	}
	// A generation whose store path was tampered with is refused.
	chmod(t, filepath.Join(a, "app"), 0o755)
	if err := s.Switch(1); err == nil || !strings.Contains(err.Error(), "want read-only") {
		t.Errorf("Switch(1) to a writable store path = %v, want an error containing %q", err, "want read-only")
	}
	if link, err := os.Readlink(s.Layout().Current()); link != "generations/1" || err != nil {
		t.Errorf("Readlink(current) after failed switches = %q, %v, want %q", link, err, "generations/1")
	}
	if l := leftovers(t, s); len(l) != 0 {
		t.Errorf("leftovers after failed switches = %q, want none", l)
	}
}

func TestCurrentGenerationRejectsForeignTarget(t *testing.T) {
	s := newStore(t)
	if err := os.Symlink("store", s.Layout().Current()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CurrentGeneration(); err == nil || !strings.Contains(err.Error(), "want a generation") {
		t.Errorf("CurrentGeneration() with current → store = %v, want an error containing %q", err, "want a generation")
	}
}

// TestSwitchAtomic switches back and forth while a reader resolves
// current: every read must find a link that leads to a store path.
func TestSwitchAtomic(t *testing.T) {
	s := newStore(t)
	for _, k := range []string{"a", "b"} {
		if _, err := s.AddGeneration(mustBuild(t, s, Key(k), "bitpoll", k, testFiles)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Switch(1); err != nil {
		t.Fatal(err)
	}
	var (
		stop  atomic.Bool
		reads int
		bad   []error
		wg    sync.WaitGroup
	)
	cur := s.Layout().Current()
	wg.Go(func() {
		for !stop.Load() {
			reads++
			if _, err := os.Readlink(cur); err != nil {
				bad = append(bad, err)
			}
			if _, err := os.Stat(filepath.Join(cur, MarkerFile)); err != nil {
				bad = append(bad, err)
			}
		}
	})
	for i := range 200 {
		if err := s.Switch(1 + i%2); err != nil {
			t.Error(err)
			break
		}
	}
	stop.Store(true)
	wg.Wait()
	if len(bad) > 0 || reads == 0 {
		t.Errorf("during 200 switches: %d reads, %d failed (first: %v), want reads and no failure", reads, len(bad), errors.Join(bad[:min(len(bad), 1)]...))
	}
}

// TestAddAndSwitch adds a generation and makes it current in one step,
// and refuses what AddGeneration refuses without touching current.
func TestAddAndSwitch(t *testing.T) {
	s := newStore(t)
	a := mustBuild(t, s, Key("a"), "bitpoll", "1", testFiles)
	b := mustBuild(t, s, Key("b"), "bitpoll", "2", testFiles)
	for i, p := range []string{a, b} {
		g, err := s.AddAndSwitch(p)
		if err != nil || g.N != i+1 || g.Target != p || !g.Current {
			t.Fatalf("AddAndSwitch(%q) = %+v, %v, want generation %d, current", filepath.Base(p), g, err, i+1)
		}
		cur, ok, err := s.CurrentGeneration()
		if !ok || err != nil || cur.N != i+1 {
			t.Errorf("after AddAndSwitch(%q): current = %+v, %v, %v, want generation %d", filepath.Base(p), cur, ok, err, i+1)
		}
	}
	if err := os.Chmod(a, 0o755); err != nil { // no longer sealed
		t.Fatal(err)
	}
	defer os.Chmod(a, 0o555)
	if g, err := s.AddAndSwitch(a); err == nil || !strings.Contains(err.Error(), "want read-only") {
		t.Errorf("AddAndSwitch(writable path) = %+v, %v, want the verify error", g, err)
	}
	if cur, _, _ := s.CurrentGeneration(); cur.N != 2 {
		t.Errorf("current after a refused AddAndSwitch = %d, want 2", cur.N)
	}
}

// TestActivate: a new path becomes the next generation and current; the
// current path again makes none.
func TestActivate(t *testing.T) {
	s := newStore(t)
	a := mustBuild(t, s, Key("a"), "bitpoll", "1", testFiles)
	b := mustBuild(t, s, Key("b"), "bitpoll", "2", testFiles)
	for _, tc := range []struct {
		path     string
		n        int
		switched bool
	}{{a, 1, true}, {a, 1, false}, {b, 2, true}, {b, 2, false}, {a, 3, true}} {
		g, switched, err := Activate(context.Background(), s.Layout(), tc.path, Hooks{})
		if err != nil || g.N != tc.n || switched != tc.switched {
			t.Fatalf("Activate(%s) = generation %d, switched %v, %v; want %d, %v", filepath.Base(tc.path), g.N, switched, err, tc.n, tc.switched)
		}
		if cur, ok, err := s.CurrentGeneration(); !ok || err != nil || cur.N != tc.n {
			t.Errorf("after Activate(%s): current = %+v, %v, %v; want generation %d", filepath.Base(tc.path), cur, ok, err, tc.n)
		}
	}
}
