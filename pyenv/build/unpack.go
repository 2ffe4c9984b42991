package build

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bitpoll-install/bitpoll-install/safearchive"
)

// ErrUnsafe marks an sdist refused because unpacking it could write
// outside its directory, or past the limits.
var ErrUnsafe = errors.New("unsafe sdist")

// sdistPolicy is what an sdist may hold: one top directory, with files,
// directories, links that stay inside it, and hard links to its earlier
// files (which become copies).
func sdistPolicy(lim safearchive.Limits) safearchive.Policy {
	return safearchive.Policy{Limits: lim, Label: ErrUnsafe, Symlinks: true, Hardlinks: true, DotSlash: true, OneTop: true}
}

// unpackSdist extracts the archive at path (.tar.gz or .zip, told apart by
// content) into the empty directory dst and returns the path of its single
// top-level directory. The archive is checked whole, against lim, before
// anything is written.
func unpackSdist(path, dst string, lim safearchive.Limits) (string, error) {
	if err := safearchive.Extract(path, dst, sdistPolicy(lim)); err != nil {
		var le *safearchive.LimitError
		if errors.As(err, &le) {
			return "", fmt.Errorf("%w: %w", ErrUnsafe, err)
		}
		return "", err
	}
	des, err := os.ReadDir(dst)
	if err != nil {
		return "", err
	}
	if len(des) != 1 || !des[0].IsDir() {
		return "", errors.New("archive has no top directory; an sdist holds one <name>-<version>/ directory")
	}
	return filepath.Join(dst, des[0].Name()), nil
}
