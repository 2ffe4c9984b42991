package index

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/bitpoll-install/bitpoll-install/httpretry"
)

// errStatusNotFound marks a 404 or 410 answer; callers turn it into an error
// that names what was missing.
var errStatusNotFound = errors.New("404 not found")

// get fetches rawURL through the client's httpretry.Client and hands the
// body to sink, which must restart from scratch on each call. A failure
// says what the user can do about it.
func (c *Client) get(ctx context.Context, rawURL, accept string, sink func(*httpretry.Response) error) error {
	var h http.Header
	if accept != "" {
		h = http.Header{"Accept": {accept}}
	}
	err := c.http.Get(ctx, rawURL, h, sink)
	if err == nil {
		return nil
	}
	var (
		se *httpretry.StatusError
		ne *httpretry.NetError
	)
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("fetch %s: %w", rawURL, err)
	case errors.As(err, &se) && se.NotFound():
		return fmt.Errorf("fetch %s: %w", rawURL, errStatusNotFound)
	case errors.As(err, &se) && se.Temporary():
		return fmt.Errorf("fetch %s: %w: the index is failing; retry later or use --index-url", rawURL, err)
	case errors.As(err, &se):
		return fmt.Errorf("fetch %s: %w: the index refused the request; check --index-url and its credentials", rawURL, err)
	case errors.As(err, &ne):
		return fmt.Errorf("fetch %s: %w; check network connectivity or use --index-url", rawURL, err)
	}
	return err // the sink's own, which names the URL
}

// readAll reads at most limit bytes, failing rather than truncating.
func readAll(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("response is larger than the %d-byte limit", limit)
	}
	return data, nil
}
