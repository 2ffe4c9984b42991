package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// GCOptions say what gc keeps.
type GCOptions struct {
	// Keep is how many of the newest generations to keep; the current
	// generation and the one before it are kept whatever it says.
	Keep int
	// Protect are generations kept too (a switch in progress).
	Protect []int
	// DryRun lists what would go and frees nothing.
	DryRun bool
	// Refs returns the cache keys a store path uses (its wheels' sha256).
	Refs func(storePath string) ([]string, error)
	// Uses returns the other store paths a store path runs on (its
	// standalone interpreter): they are kept with it.
	Uses func(storePath string) ([]string, error)
	// Caches are directories whose entries are freed unless their name
	// holds a key a kept store path uses.
	Caches []string
}

// GCResult is what gc removed (or, with DryRun, would remove).
type GCResult struct {
	Generations []int
	StorePaths  []string
	Files       []string // snapshots and cache entries
	Bytes       int64    // the space freed: only files with no link left
}

// GC removes the generations not kept, then the store paths, snapshots
// and cache entries nothing kept references. The caller must hold Lock.
func (s *Store) GC(o GCOptions) (*GCResult, error) {
	r, err := s.gc(o)
	if err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	return r, nil
}

func (s *Store) gc(o GCOptions) (*GCResult, error) {
	gens, err := s.generations()
	if err != nil {
		return nil, err
	}
	keep := map[int]bool{}
	for _, n := range o.Protect {
		keep[n] = true
	}
	cur := 0
	for _, g := range gens {
		if g.Current {
			cur = g.N
		}
	}
	prev := 0
	for _, g := range gens {
		if g.N < cur {
			prev = g.N
		}
	}
	keep[cur], keep[prev] = true, true
	if cur > 0 {
		if m, err := s.ReadMeta(cur); err == nil && m.Previous > 0 {
			keep[m.Previous] = true
		}
	}
	for i := len(gens) - 1; i >= 0 && i >= len(gens)-o.Keep; i-- {
		keep[gens[i].N] = true
	}
	r := &GCResult{}
	var remove []string // paths to free, in order
	kept := map[string]bool{}
	for _, g := range gens {
		if keep[g.N] {
			kept[filepath.Base(g.Target)] = true
			continue
		}
		m, err := s.ReadMeta(g.N)
		if err != nil {
			return nil, err
		}
		r.Generations = append(r.Generations, g.N)
		remove = append(remove, s.genPath(g.N), s.metaPath(g.N))
		if m.Snapshot != "" {
			r.Files = append(r.Files, m.Snapshot)
			remove = append(remove, m.Snapshot)
		}
	}
	if o.Uses != nil {
		for _, g := range gens {
			if !keep[g.N] {
				continue
			}
			used, err := o.Uses(g.Target)
			if err != nil {
				return nil, err
			}
			for _, u := range used {
				if filepath.Dir(filepath.Clean(u)) == filepath.Clean(s.layout.StoreDir()) {
					kept[filepath.Base(u)] = true
				}
			}
		}
	}
	entries, err := os.ReadDir(s.layout.StoreDir())
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		p := filepath.Join(s.layout.StoreDir(), e.Name())
		if kept[e.Name()] {
			if o.Refs != nil {
				k, err := o.Refs(p)
				if err != nil {
					return nil, err
				}
				keys = append(keys, k...)
			}
			continue
		}
		r.StorePaths = append(r.StorePaths, p)
		remove = append(remove, p)
	}
	for _, dir := range o.Caches {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if !slices.ContainsFunc(keys, func(k string) bool { return strings.Contains(e.Name(), k) }) {
				p := filepath.Join(dir, e.Name())
				r.Files = append(r.Files, p)
				remove = append(remove, p)
			}
		}
	}
	if r.Bytes, err = freedBytes(remove); err != nil {
		return nil, err
	}
	if o.DryRun {
		return r, nil
	}
	for _, p := range remove {
		if err := removeTree(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return r, fmt.Errorf("remove %s: %w", p, err)
		}
	}
	return r, nil
}

// freedBytes is the space removing paths frees: each inode counted once,
// and only when every one of its links is among them (a file a kept store
// path still links is not freed).
func freedBytes(paths []string) (int64, error) {
	type ino struct{ dev, ino uint64 }
	seen := map[ino]int{}
	size := map[ino]int64{}
	nlink := map[ino]int{}
	for _, root := range paths {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			st, ok := info.Sys().(*syscall.Stat_t)
			if !ok {
				return nil
			}
			k := ino{uint64(st.Dev), st.Ino}
			seen[k]++
			size[k] = st.Blocks * 512
			nlink[k] = int(st.Nlink)
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	var total int64
	for k, n := range seen {
		if n >= nlink[k] {
			total += size[k]
		}
	}
	return total, nil
}

// Usage is the space of a store path: Own is held by no other path (its
// files linked nowhere else), Shared is linked from elsewhere too (the
// caches, other generations).
type Usage struct{ Own, Shared int64 }

// DiskUsage measures path.
func DiskUsage(path string) (Usage, error) {
	var u Usage
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if !d.IsDir() && st.Nlink > 1 {
			u.Shared += st.Blocks * 512
		} else {
			u.Own += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		return Usage{}, fmt.Errorf("measure %s: %w", path, err)
	}
	return u, nil
}
