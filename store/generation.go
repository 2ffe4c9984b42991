package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/bitpoll-install/bitpoll-install/atomicfile"
)

// Generation is one numbered symlink in the generations directory.
type Generation struct {
	N       int
	Target  string    // the store path it points at
	Current bool      // whether current points at it
	Created time.Time // when the symlink was made
}

// Generations lists the generations, oldest first.
func (s *Store) Generations() ([]Generation, error) {
	gens, err := s.generations()
	if err != nil {
		return nil, fmt.Errorf("list generations: %w", err)
	}
	return gens, nil
}

func (s *Store) generations() ([]Generation, error) {
	dir := s.layout.GenerationsDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	cur, curOK, err := s.currentN()
	if err != nil {
		return nil, err
	}
	var gens []Generation
	for _, e := range entries {
		n, ok := parseGen(e.Name())
		if !ok {
			continue
		}
		g, err := s.readGen(n)
		if err != nil {
			return nil, err
		}
		g.Current = curOK && cur == n
		gens = append(gens, g)
	}
	slices.SortFunc(gens, func(a, b Generation) int { return a.N - b.N })
	return gens, nil
}

// parseGen accepts only the canonical decimal form, so "01" or "1.tmp"
// are never mistaken for generation 1.
func parseGen(name string) (int, bool) {
	n, err := strconv.Atoi(name)
	if err != nil || n <= 0 || strconv.Itoa(n) != name {
		return 0, false
	}
	return n, true
}

func (s *Store) genPath(n int) string {
	return filepath.Join(s.layout.GenerationsDir(), strconv.Itoa(n))
}

func (s *Store) readGen(n int) (Generation, error) {
	p := s.genPath(n)
	info, err := os.Lstat(p)
	if err != nil {
		return Generation{}, err
	}
	if info.Mode().Type() != fs.ModeSymlink {
		return Generation{}, fmt.Errorf("generation %q is a %v, want a symlink", p, info.Mode().Type())
	}
	target, err := os.Readlink(p)
	if err != nil {
		return Generation{}, err
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(filepath.Dir(p), target)
	}
	return Generation{N: n, Target: target, Created: info.ModTime()}, nil
}

// AddGeneration makes a new generation, one above the highest, pointing
// at the store path path through a relative symlink (so the tree can be
// moved or mounted elsewhere). path must pass Verify: a generation never
// points at a partial build. If the newest generation already points at
// path, it is returned instead, so rerunning an interrupted install does
// not stack duplicates. The caller must hold Lock.
func (s *Store) AddGeneration(path string) (Generation, error) {
	g, err := s.addGeneration(filepath.Clean(path))
	if err != nil {
		return Generation{}, fmt.Errorf("add generation for %q: %w", path, err)
	}
	return g, nil
}

// AddAndSwitch is AddGeneration and then Switch to that generation, with
// path verified once instead of twice: each time is a walk over the
// thousands of files of a store path. The caller must hold Lock.
func (s *Store) AddAndSwitch(path string) (Generation, error) {
	path = filepath.Clean(path)
	g, err := s.addGeneration(path)
	if err != nil {
		return Generation{}, fmt.Errorf("add generation for %q: %w", path, err)
	}
	if err := s.switchTo(g.N, false); err != nil {
		return Generation{}, fmt.Errorf("switch to generation %d: %w", g.N, err)
	}
	g.Current = true
	return g, nil
}

// AddGenerationAlways is AddGeneration even when the newest generation
// points at path: the same code under another config is a generation of
// its own, so that it starts beside the one serving. The caller must hold
// Lock.
func (s *Store) AddGenerationAlways(path string) (Generation, error) {
	g, err := s.addGenerationOpt(filepath.Clean(path), true)
	if err != nil {
		return Generation{}, fmt.Errorf("add generation for %q: %w", path, err)
	}
	return g, nil
}

// addGeneration verifies path and adds it.
func (s *Store) addGeneration(path string) (Generation, error) {
	return s.addGenerationOpt(path, false)
}

func (s *Store) addGenerationOpt(path string, always bool) (Generation, error) {
	if err := s.Verify(path); err != nil {
		return Generation{}, err
	}
	gens, err := s.generations()
	if err != nil {
		return Generation{}, err
	}
	n := 1
	if len(gens) > 0 {
		last := gens[len(gens)-1]
		if last.Target == path && !always {
			return last, nil
		}
		n = last.N + 1
	}
	dir := s.layout.GenerationsDir()
	rel, err := filepath.Rel(dir, path)
	if err != nil {
		return Generation{}, err
	}
	// Creating a symlink is atomic: it exists whole or not at all.
	if err := os.Symlink(rel, s.genPath(n)); err != nil {
		return Generation{}, err
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return Generation{}, err
	}
	s.Hooks.Call(PhaseLinked, s.genPath(n))
	g, err := s.readGen(n)
	if err != nil {
		return Generation{}, err
	}
	cur, curOK, err := s.currentN()
	g.Current = curOK && cur == n
	return g, err
}

// Switch points current at generation n: it makes a symlink under a
// temporary name and renames it over current, so a reader sees the old or
// the new generation and never a missing link. The generation's store
// path must pass Verify. The caller must hold Lock.
func (s *Store) Switch(n int) error {
	if err := s.switchTo(n, true); err != nil {
		return fmt.Errorf("switch to generation %d: %w", n, err)
	}
	return nil
}

// SwitchVerified is Switch for a generation whose store path the caller
// verified in the same transaction: it only renames, so the switch itself
// takes no walk over thousands of files. The caller must hold Lock.
func (s *Store) SwitchVerified(n int) error {
	if err := s.switchTo(n, false); err != nil {
		return fmt.Errorf("switch to generation %d: %w", n, err)
	}
	return nil
}

// switchTo points current at generation n, whose store path verify says
// to check first.
func (s *Store) switchTo(n int, verify bool) error {
	g, err := s.readGen(n)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no generation %d in %q; pick one that exists", n, s.layout.GenerationsDir())
	}
	if err != nil {
		return err
	}
	if verify {
		if err := s.Verify(g.Target); err != nil {
			return err
		}
	}
	cur := s.layout.Current()
	rel, err := filepath.Rel(filepath.Dir(cur), s.genPath(n))
	if err != nil {
		return err
	}
	stale, err := filepath.Glob(cur + ".tmp-*")
	if err != nil {
		return err
	}
	for _, p := range stale {
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("remove leftover of a crashed switch: %w", err)
		}
	}
	var suffix [8]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return err
	}
	tmp := cur + ".tmp-" + hex.EncodeToString(suffix[:])
	if err := os.Symlink(rel, tmp); err != nil {
		return err
	}
	s.Hooks.Call(PhaseSwitching, tmp)
	if err := renameDurable(tmp, cur); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	s.Hooks.Call(PhaseSwitched, cur)
	return nil
}

// CurrentGeneration returns the generation current points at; ok is false
// when there is no current link yet.
func (s *Store) CurrentGeneration() (g Generation, ok bool, err error) {
	n, ok, err := s.currentN()
	if err == nil && ok {
		g, err = s.readGen(n)
		g.Current = true
	}
	if err != nil {
		return Generation{}, false, fmt.Errorf("read current generation: %w", err)
	}
	return g, ok, nil
}

// currentN returns the generation number current points at.
func (s *Store) currentN() (int, bool, error) {
	cur := s.layout.Current()
	target, err := os.Readlink(cur)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(filepath.Dir(cur), target)
	}
	n, ok := parseGen(filepath.Base(target))
	if !ok || filepath.Dir(target) != filepath.Clean(s.layout.GenerationsDir()) {
		return 0, false, fmt.Errorf("current %q points to %q, want a generation in %q", cur, target, s.layout.GenerationsDir())
	}
	return n, true, nil
}

// Activate records path as a generation unless the current one already is
// it, and makes it current, under the store lock: the switch of run, which
// has no service to start. It reports whether current moved.
func Activate(ctx context.Context, l Layout, path string, h Hooks) (Generation, bool, error) {
	st, err := Open(l)
	if err != nil {
		return Generation{}, false, err
	}
	st.Hooks = h
	unlock, err := st.Lock(ctx)
	if err != nil {
		return Generation{}, false, err
	}
	defer unlock()
	cur, ok, err := st.CurrentGeneration()
	if err != nil {
		return Generation{}, false, err
	}
	if ok && filepath.Base(cur.Target) == filepath.Base(path) {
		return cur, false, nil
	}
	gen, err := st.AddAndSwitch(path)
	if err != nil {
		return Generation{}, false, err
	}
	return gen, true, nil
}
