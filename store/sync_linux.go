package store

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// syncTree makes everything written under root durable. One syncfs(2) on
// the filesystem replaces an fsync per file: a venv has thousands of files,
// and fsyncing each would cost more than building it.
func syncTree(root string) error {
	f, err := os.Open(root)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("sync filesystem of %q: %w", root, err)
	}
	return nil
}
