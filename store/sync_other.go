//go:build !linux

package store

import (
	"io/fs"
	"os"
	"path/filepath"
)

// syncTree makes everything written under root durable, one fsync per
// file and directory, where syncfs(2) is not available.
func syncTree(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	})
}
