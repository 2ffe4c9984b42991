package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/bitpoll-install/bitpoll-install/atomicfile"
	"github.com/bitpoll-install/bitpoll-install/workers"
)

// renameDurable renames oldpath to newpath (atomic on one filesystem) and
// syncs the directory so the rename survives a power loss.
func renameDurable(oldpath, newpath string) error {
	if err := os.Rename(oldpath, newpath); err != nil {
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(newpath))
}

// seal makes the tree at root read-only: directories 0555, files 0555 if
// any execute bit was set and 0444 otherwise. Special bits are dropped.
// Anything but files, directories and symlinks is refused: a store path
// has no business holding devices, sockets or fifos. A store path has
// thousands of entries, so the modes are set on several goroutines, and
// only where they differ: files hardlinked from a cache that an earlier
// build sealed already have theirs.
func seal(root string) error {
	type change struct {
		path string
		mode fs.FileMode
	}
	var todo []change
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := storedInfo(p, d)
		if err != nil || info == nil {
			return err
		}
		mode := fs.FileMode(0o444)
		if d.IsDir() || info.Mode().Perm()&0o111 != 0 {
			mode = 0o555
		}
		if info.Mode().Perm() != mode || info.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
			todo = append(todo, change{p, mode})
		}
		return nil
	})
	if err != nil {
		return err
	}
	return workers.ForEach(len(todo), runtime.GOMAXPROCS(0), func(i int) error {
		return os.Chmod(todo[i].path, todo[i].mode)
	})
}

// storedInfo returns the info of an entry whose mode seal sets, or nil:
// for a symlink, which has no mode of its own on Linux, with no error, and
// for anything but files, directories and symlinks with one.
func storedInfo(p string, d fs.DirEntry) (fs.FileInfo, error) {
	t := d.Type()
	if t&fs.ModeSymlink != 0 {
		return nil, nil
	}
	if !t.IsDir() && !t.IsRegular() {
		return nil, fmt.Errorf("%q is a %v; only files, directories and symlinks may be stored", p, t)
	}
	return d.Info()
}

// checkSealed reports the first entry under root that seal would change.
func checkSealed(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := storedInfo(p, d)
		if err != nil || info == nil {
			return err
		}
		if m := info.Mode(); m.Perm()&0o222 != 0 || m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
			return fmt.Errorf("%q has mode %v, want read-only (0444, 0555 or a 0555 directory)", p, m)
		}
		return nil
	})
}

// removeTree removes root even when seal made it read-only, which stops
// a non-root user from unlinking its entries.
func removeTree(root string) error {
	err := os.RemoveAll(root)
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	// Only directories need their write bit back to unlink their entries.
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	return os.RemoveAll(root)
}

// StartSync begins writing what is under dir to disk in the background
// and returns a function that waits for that. A build calls it once the
// bulk of its files is written, so that the sync that makes the finished
// build durable, before it is renamed into place, finds little left to do.
func StartSync(dir string) (wait func() error) {
	done := make(chan error, 1)
	go func() { done <- syncTree(dir) }()
	return func() error { return <-done }
}
