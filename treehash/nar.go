package treehash

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// NarHash returns the SRI hash "sha256-<base64>" of the Nix archive (NAR)
// serialisation of path, the value `nix hash path` prints and a fixed-output
// derivation with recursive hashing expects. Unlike GitTree it hashes every
// entry, ".git" and empty directories included.
func NarHash(path string) (string, error) {
	h := sha256.New()
	w := &narWriter{w: bufio.NewWriterSize(h, 64<<10)}
	w.str("nix-archive-1")
	if err := w.node(path); err != nil {
		return "", fmt.Errorf("hash nar of %q: %w", path, err)
	}
	if err := w.w.Flush(); err != nil {
		return "", fmt.Errorf("hash nar of %q: %w", path, err)
	}
	return "sha256-" + base64.StdEncoding.EncodeToString(h.Sum(nil)), nil
}

// narWriter writes NAR tokens. Writes go to a hash through a bufio.Writer,
// which remembers the first error and reports it from Flush.
type narWriter struct {
	w *bufio.Writer
}

func (n *narWriter) u64(v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	n.w.Write(b[:])
}

// pad fills a field of length size up to a multiple of 8 bytes.
func (n *narWriter) pad(size uint64) {
	var zero [8]byte
	if r := size % 8; r != 0 {
		n.w.Write(zero[:8-r])
	}
}

// str writes a NAR string: its length, its bytes and padding.
func (n *narWriter) str(s string) {
	n.u64(uint64(len(s)))
	n.w.WriteString(s)
	n.pad(uint64(len(s)))
}

func (n *narWriter) node(path string) error {
	info, err := os.Lstat(path)
	if err != nil {
		return err
	}
	n.str("(")
	n.str("type")
	switch mode := info.Mode(); {
	case mode.IsRegular():
		n.str("regular")
		if isExec(mode) {
			n.str("executable")
			n.str("")
		}
		n.str("contents")
		var size int64
		err := copyFile(io.Writer(n.w), path, func(s int64) error {
			size = s
			n.u64(uint64(s))
			return nil
		})
		if err != nil {
			return err
		}
		n.pad(uint64(size))
	case mode&os.ModeSymlink != 0:
		target, err := os.Readlink(path)
		if err != nil {
			return err
		}
		n.str("symlink")
		n.str("target")
		n.str(target)
	case mode.IsDir():
		n.str("directory")
		// os.ReadDir sorts by name in byte order, as NAR requires.
		des, err := os.ReadDir(path)
		if err != nil {
			return err
		}
		for _, de := range des {
			n.str("entry")
			n.str("(")
			n.str("name")
			n.str(de.Name())
			n.str("node")
			if err := n.node(filepath.Join(path, de.Name())); err != nil {
				return err
			}
			n.str(")")
		}
	default:
		return unsupported(path, mode)
	}
	n.str(")")
	return nil
}
