package store

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestGCKeepsWhatKeptPathsUse: a store path no generation points at stays
// while a kept generation's store path runs on it (its standalone
// interpreter), and goes with the last generation that uses it.
func TestGCKeepsWhatKeptPathsUse(t *testing.T) {
	s := newStore(t)
	interp := mustBuild(t, s, Key("interp"), "cpython", "3.13.15-20260814", map[string]string{"python/bin/python3.13": "#!"})
	other := mustBuild(t, s, Key("other-interp"), "cpython", "3.12.14-20260814", map[string]string{"python/bin/python3.12": "#!"})
	app1 := mustBuild(t, s, Key("app1"), "bitpoll", "1.0.0", map[string]string{"runs-on": interp})
	app2 := mustBuild(t, s, Key("app2"), "bitpoll", "1.0.1", map[string]string{"runs-on": other})
	app3 := mustBuild(t, s, Key("app3"), "bitpoll", "1.0.2", map[string]string{"runs-on": "/usr/bin/python3"})
	for _, p := range []string{app1, app2, app3} {
		if _, err := s.AddAndSwitch(p); err != nil {
			t.Fatal(err)
		}
	}
	uses := func(p string) ([]string, error) {
		b, err := os.ReadFile(filepath.Join(p, "runs-on"))
		return []string{string(b)}, err
	}
	// Generations 2 and 3 are kept (current and the one before); 1 goes,
	// and with it app1 and the interpreter only app1 used.
	r, err := s.GC(GCOptions{Keep: 0, Uses: uses})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(r.StorePaths)
	want := []string{app1, interp}
	slices.Sort(want)
	if !slices.Equal(r.StorePaths, want) {
		t.Errorf("gc removed %q, want %q (other is used by the kept generation 2)", r.StorePaths, want)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("gc removed %s, which the kept generation 2 runs on: %v", other, err)
	}
}
