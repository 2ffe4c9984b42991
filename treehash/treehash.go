// Package treehash computes content hashes of a directory tree: the git tree
// id (GitTree) and the Nix NAR hash (NarHash). Both depend only on file
// names, contents, the owner's executable bit and symlink targets, so the
// same source pins the same way whether it came from a tarball, a clone or a
// local mirror. Fetching the tree is package fetch's job.
//
// Only regular files, directories and symlinks can be hashed; any other file
// type is an error. Files are streamed, never read whole into memory.
package treehash

import (
	"fmt"
	"io"
	"io/fs"
	"os"
)

// isExec reports whether git and Nix record a regular file as executable:
// both look only at the owner's execute bit.
func isExec(mode fs.FileMode) bool { return mode&0o100 != 0 }

// unsupported is the error for a file that is neither a regular file, a
// directory nor a symlink.
func unsupported(path string, mode fs.FileMode) error {
	return fmt.Errorf("file %q has type %v: only regular files, directories and symlinks can be hashed", path, mode.Type())
}

// copyFile streams the regular file at path into w after calling header
// with its size, and fails if the size changed while it was read.
func copyFile(w io.Writer, path string, header func(size int64) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return unsupported(path, info.Mode())
	}
	size := info.Size()
	if err := header(size); err != nil {
		return err
	}
	n, err := io.Copy(w, io.LimitReader(f, size+1))
	if err != nil {
		return fmt.Errorf("read %q: %w", path, err)
	}
	if n != size {
		return fmt.Errorf("file %q changed size while being hashed (%d bytes, expected %d)", path, n, size)
	}
	return nil
}
