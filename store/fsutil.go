package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// syncDir makes renames and creations inside dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %q: %w", dir, err)
	}
	return nil
}

// renameDurable renames oldpath to newpath (atomic on one filesystem) and
// syncs the directory so the rename survives a power loss.
func renameDurable(oldpath, newpath string) error {
	if err := os.Rename(oldpath, newpath); err != nil {
		return err
	}
	return syncDir(filepath.Dir(newpath))
}

// seal makes the tree at root read-only: directories 0555, files 0555 if
// any execute bit was set and 0444 otherwise. Special bits are dropped.
// Anything but files, directories and symlinks is refused: a store path
// has no business holding devices, sockets or fifos.
func seal(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch t := d.Type(); {
		case t.IsDir():
			return os.Chmod(p, 0o555)
		case t.IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			mode := fs.FileMode(0o444)
			if info.Mode().Perm()&0o111 != 0 {
				mode = 0o555
			}
			return os.Chmod(p, mode)
		case t&fs.ModeSymlink != 0:
			return nil // Linux symlinks have no mode of their own.
		default:
			return fmt.Errorf("%q is a %v; only files, directories and symlinks may be stored", p, t)
		}
	})
}

// checkSealed reports the first entry under root that seal would change.
func checkSealed(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		t := d.Type()
		if t&fs.ModeSymlink != 0 {
			return nil
		}
		if !t.IsDir() && !t.IsRegular() {
			return fmt.Errorf("%q is a %v; only files, directories and symlinks may be stored", p, t)
		}
		info, err := d.Info()
		if err != nil {
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
