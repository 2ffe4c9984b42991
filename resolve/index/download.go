package index

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/bitpoll-install/bitpoll-install/httpretry"
)

// fetchVerified fetches a small file whole into memory and checks its sha256.
func (c *Client) fetchVerified(ctx context.Context, rawURL, wantSHA string, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	err := c.get(ctx, rawURL, "", func(r *httpretry.Response) error {
		buf.Reset()
		_, err := httpretry.Copy(&buf, r.Body, rawURL, -1, limit, wantSHA)
		return err
	})
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// download fetches f into a temporary file and verifies its size and
// sha256. The caller must close and remove the file. limit caps the size
// when the index does not declare one.
func (c *Client) download(ctx context.Context, f File, limit int64) (*os.File, error) {
	if f.Size > limit {
		return nil, fmt.Errorf("download %s: size %d is over the %d-byte limit", f.URL, f.Size, limit)
	}
	size := f.Size
	if size <= 0 {
		size = -1
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
	err = c.get(ctx, f.URL, "", func(r *httpretry.Response) error {
		// A retried attempt starts over.
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if err := tmp.Truncate(0); err != nil {
			return err
		}
		_, err := httpretry.Copy(tmp, r.Body, f.Filename, size, limit, f.SHA256)
		return err
	})
	if err != nil {
		return fail(fmt.Errorf("download %s: %w", f.URL, err))
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
