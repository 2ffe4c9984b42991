package index

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// StatusError is an HTTP answer the client gave up on.
type StatusError struct {
	URL      string
	Code     int
	Status   string // e.g. "503 Service Unavailable"
	Attempts int
}

func (e *StatusError) Error() string {
	if e.Code == http.StatusTooManyRequests || e.Code >= 500 {
		return fmt.Sprintf("fetch %s: %s after %d attempts: the index is failing; retry later or use --index-url", e.URL, e.Status, e.Attempts)
	}
	return fmt.Sprintf("fetch %s: %s: the index refused the request; check --index-url and its credentials", e.URL, e.Status)
}

// HashError reports content whose sha256 differs from what the index
// promised.
type HashError struct {
	URL      string
	Expected string // hex sha256 the index gave
	Actual   string // hex sha256 of the bytes received
}

func (e *HashError) Error() string {
	return fmt.Sprintf("verify %s: sha256 is %s, want %s: the file was altered or corrupted in transit; retry, and report it to the index if it persists", e.URL, e.Actual, e.Expected)
}

// errStatusNotFound marks a 404 or 410 answer; callers turn it into an error
// that names what was missing.
var errStatusNotFound = errors.New("404 not found")

// response is what a sink sees of one successful attempt.
type response struct {
	body io.Reader
	url  *url.URL // after redirects, to resolve relative links
	typ  string   // Content-Type
}

// get fetches rawURL and hands the body to sink, retrying network errors,
// 429 and 5xx with backoff. A sink error caused by reading the body is a
// network error and is retried too, so sink must restart from scratch on
// each call. Every attempt holds one slot of the client's semaphore.
func (c *Client) get(ctx context.Context, rawURL, accept string, sink func(response) error) error {
	for attempt := 1; ; attempt++ {
		wait, err := c.try(ctx, rawURL, accept, attempt, sink)
		if wait < 0 || attempt > c.retries {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("fetch %s: %w", rawURL, ctx.Err())
		}
		if wait == 0 {
			wait = c.backoff(attempt)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("fetch %s: %w (while waiting to retry after: %v)", rawURL, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// try makes one attempt. It returns the error and how long to wait before
// the next attempt: -1 for a final answer, 0 for the default backoff, or the
// server's Retry-After.
func (c *Client) try(ctx context.Context, rawURL, accept string, attempt int, sink func(response) error) (time.Duration, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return -1, fmt.Errorf("fetch %s: %w", rawURL, ctx.Err())
	}
	defer func() { <-c.sem }()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return -1, fmt.Errorf("fetch %q: %w", rawURL, err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return -1, fmt.Errorf("fetch %s: %w", rawURL, ctx.Err())
		}
		return 0, networkError(rawURL, err)
	}
	defer resp.Body.Close()

	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return -1, fmt.Errorf("fetch %s: %w", rawURL, errStatusNotFound)
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
		return retryAfter(resp.Header.Get("Retry-After"), time.Now()),
			&StatusError{URL: rawURL, Code: resp.StatusCode, Status: resp.Status, Attempts: attempt}
	default:
		return -1, &StatusError{URL: rawURL, Code: resp.StatusCode, Status: resp.Status, Attempts: attempt}
	}

	body := &bodyReader{r: resp.Body}
	err = sink(response{body: body, url: resp.Request.URL, typ: resp.Header.Get("Content-Type")})
	switch {
	case err == nil:
		return -1, nil
	case ctx.Err() != nil:
		return -1, fmt.Errorf("fetch %s: %w", rawURL, ctx.Err())
	case body.err != nil:
		return 0, networkError(rawURL, body.err)
	}
	return -1, err
}

// bodyReader remembers a read error so that a failed transfer can be told
// apart from bad content.
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func networkError(rawURL string, err error) error {
	host := rawURL
	if u, perr := url.Parse(rawURL); perr == nil {
		host = u.Host
	}
	return fmt.Errorf("fetch %s: %w: cannot reach %q; check network connectivity or use --index-url", rawURL, err, host)
}

// backoff is exponential with jitter in [d/2, d) so that parallel clients
// do not retry in lockstep.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.baseDelay << (attempt - 1)
	if d > maxBackoff || d <= 0 {
		d = maxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

// retryAfter parses a Retry-After header, in seconds or as an HTTP date. It
// returns 0 when the header is absent or unusable.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.Atoi(v); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	if d <= 0 {
		return 0
	}
	return min(d, maxRetryAfter)
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
