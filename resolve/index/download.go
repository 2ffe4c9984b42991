package index

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
)

// fetchVerified fetches a small file whole into memory and checks its sha256.
func (c *Client) fetchVerified(ctx context.Context, rawURL, wantSHA string, limit int64) ([]byte, error) {
	var data []byte
	err := c.get(ctx, rawURL, "", func(r response) error {
		var err error
		if data, err = readAll(r.body, limit); err != nil {
			return fmt.Errorf("fetch %s: %w", rawURL, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if got := sha256Hex(data); got != wantSHA {
		return nil, &HashError{URL: rawURL, Expected: wantSHA, Actual: got}
	}
	return data, nil
}

// download fetches f into a temporary file and verifies its size and
// sha256. The caller must close and remove the file. limit caps the size
// when the index does not declare one.
func (c *Client) download(ctx context.Context, f File, limit int64) (*os.File, error) {
	if f.Size > limit {
		return nil, fmt.Errorf("download %s: size %d is over the %d-byte limit", f.URL, f.Size, limit)
	}
	if f.Size > 0 {
		limit = f.Size
	}
	tmp, err := os.CreateTemp("", "bitpoll-install-dist-*")
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", f.URL, err)
	}
	fail := func(err error) (*os.File, error) {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	var got string
	err = c.get(ctx, f.URL, "", func(r response) error {
		// A retried attempt starts over.
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if err := tmp.Truncate(0); err != nil {
			return err
		}
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r.body, limit+1))
		if err != nil {
			return fmt.Errorf("download %s: %w", f.URL, err)
		}
		switch {
		case n > limit && f.Size > 0:
			return fmt.Errorf("download %s: more than the %d bytes the index declared", f.URL, f.Size)
		case n > limit:
			return fmt.Errorf("download %s: larger than the %d-byte limit", f.URL, limit)
		case f.Size > 0 && n != f.Size:
			return fmt.Errorf("download %s: got %d bytes, the index declared %d", f.URL, n, f.Size)
		}
		got = hex.EncodeToString(h.Sum(nil))
		return nil
	})
	if err != nil {
		return fail(err)
	}
	if got != f.SHA256 {
		return fail(&HashError{URL: f.URL, Expected: f.SHA256, Actual: got})
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fail(fmt.Errorf("download %s: %w", f.URL, err))
	}
	return tmp, nil
}

// closeRemove disposes of a file made by download.
func closeRemove(f *os.File) error {
	return errors.Join(f.Close(), os.Remove(f.Name()))
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
