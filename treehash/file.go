package treehash

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync"
)

var fileBufs = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// FileSHA256 returns the hex sha256 of the file at p and its length: the
// one file hash of the caches, the store's seal records and their checks.
func FileSHA256(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	buf := fileBufs.Get().(*[]byte)
	defer fileBufs.Put(buf)
	// Hiding the file's WriteTo makes io.CopyBuffer use buf, not a new
	// buffer for every one of a venv's thousands of small files.
	n, err := io.CopyBuffer(h, struct{ io.Reader }{f}, *buf)
	if err != nil {
		return "", 0, fmt.Errorf("read %q: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
