// Package httpretry is the one HTTP client that downloads: index pages,
// metadata, wheels, sdists and vulnerability reports all go through it. A
// request is retried after a network error, a body cut short, and a 408,
// 429 or 5xx answer, with exponential backoff and jitter, waiting at least
// what the server's Retry-After asks. Copy checks a body's size and
// sha256 on the way. CheckURL says which URLs are fetched at all; the
// lock's check asks it too, so a lock that passes is one the fetcher
// takes.
package httpretry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Defaults for the zero values of Options.
const (
	DefaultRetries   = 4
	DefaultBaseDelay = 500 * time.Millisecond
	// DefaultMaxDelay caps the backoff.
	DefaultMaxDelay = 30 * time.Second
	// DefaultMaxRetryAfter caps a server's Retry-After, so that a
	// misbehaving server cannot stall a run for hours.
	DefaultMaxRetryAfter = 2 * time.Minute
)

// Options configure a Client.
type Options struct {
	// HTTP is the client to send requests with; nil means one with
	// connect, TLS and header timeouts. Its redirects are held to
	// CheckURL either way.
	HTTP *http.Client
	// Retries is how many times a request is repeated; 0 means
	// DefaultRetries, a negative value none.
	Retries int
	// BaseDelay is the first backoff; it doubles with each retry up to
	// MaxDelay. Zero values mean the defaults.
	BaseDelay, MaxDelay time.Duration
	// MaxRetryAfter caps a server's Retry-After; 0 means
	// DefaultMaxRetryAfter.
	MaxRetryAfter time.Duration
	UserAgent     string
	// Parallel bounds the attempts in flight at once; 0 means no bound.
	Parallel int
}

// Client sends GET requests with retries. It is safe for concurrent use.
type Client struct {
	http          *http.Client
	retries       int
	base, max     time.Duration
	maxRetryAfter time.Duration
	userAgent     string
	sem           chan struct{}
}

// New returns a Client for o.
func New(o Options) *Client {
	c := &Client{
		retries: o.Retries, base: o.BaseDelay, max: o.MaxDelay,
		maxRetryAfter: o.MaxRetryAfter, userAgent: o.UserAgent,
	}
	switch {
	case c.retries == 0:
		c.retries = DefaultRetries
	case c.retries < 0:
		c.retries = 0
	}
	if c.base <= 0 {
		c.base = DefaultBaseDelay
	}
	if c.max <= 0 {
		c.max = DefaultMaxDelay
	}
	if c.maxRetryAfter <= 0 {
		c.maxRetryAfter = DefaultMaxRetryAfter
	}
	if o.Parallel > 0 {
		c.sem = make(chan struct{}, o.Parallel)
	}
	var hc http.Client
	if o.HTTP != nil {
		hc = *o.HTTP
	} else {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		t.TLSHandshakeTimeout = 15 * time.Second
		t.ResponseHeaderTimeout = time.Minute
		// The default keeps 2 idle connections per host; downloads
		// usually all go to one host.
		t.MaxIdleConnsPerHost = max(o.Parallel, 8)
		hc.Transport = t
	}
	next := hc.CheckRedirect
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme == "file" {
			return &RedirectError{fmt.Errorf("redirect to %q: a server may not point at a local file", req.URL.Redacted())}
		}
		if _, err := CheckURL(req.URL.String()); err != nil {
			return &RedirectError{fmt.Errorf("redirect refused: %w", err)}
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return &RedirectError{errors.New("more than 10 redirects")}
		}
		return nil
	}
	c.http = &hc
	return c
}

// CheckURL accepts the URLs that are fetched: https, http on the loopback
// only (a test server on this machine), and local file URLs; none with
// credentials. The lock's check calls it too, so a lock that passes is one
// the fetcher takes, and the other way round.
func CheckURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || raw == "" || strings.ContainsAny(raw, " \t\n\r\"\\") {
		return nil, fmt.Errorf("%q is not a URL (want an https or file URL)", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%q carries credentials (remove the user and password; configure them outside the lock)", u.Redacted())
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return nil, fmt.Errorf("%q has no host (want https://host/...)", raw)
		}
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("%q is plain http: use https (http is only for a test server on this machine: localhost, 127.0.0.1 or ::1)", raw)
		}
	case "file":
		if (u.Host != "" && u.Host != "localhost") || !path.IsAbs(u.Path) {
			return nil, fmt.Errorf("%q is not a local file URL (want file:///absolute/path)", raw)
		}
	default:
		return nil, fmt.Errorf("%q is not an https URL, nor a file URL for a local source (want https://host/... or file:///path)", raw)
	}
	return u, nil
}

// isLoopback reports whether host is this machine: localhost or a
// loopback address (127.0.0.0/8, ::1).
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Response is one 200 answer as a sink sees it.
type Response struct {
	Body   io.Reader
	URL    *url.URL // after redirects, to resolve relative links
	Header http.Header
}

// Error is a request given up on: Err is the last attempt's error (a
// *StatusError, a *NetError, a *RedirectError or the sink's own).
type Error struct {
	URL      string // redacted
	Attempts int
	Err      error
}

func (e *Error) Error() string {
	if e.Attempts > 1 {
		return fmt.Sprintf("%v (gave up after %d attempts)", e.Err, e.Attempts)
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// StatusError is an answer other than 200 OK.
type StatusError struct {
	Code   int
	Status string // "503 Service Unavailable"
}

func (e *StatusError) Error() string { return "the server answered " + e.Status }

// Temporary reports whether a later attempt may get another answer.
func (e *StatusError) Temporary() bool {
	return e.Code >= 500 || e.Code == http.StatusTooManyRequests || e.Code == http.StatusRequestTimeout
}

// NotFound reports a 404 or 410.
func (e *StatusError) NotFound() bool {
	return e.Code == http.StatusNotFound || e.Code == http.StatusGone
}

// NetError is a request or a body that failed on the network.
type NetError struct {
	Host string
	Err  error
}

func (e *NetError) Error() string { return fmt.Sprintf("%v: cannot reach %q", e.Err, e.Host) }
func (e *NetError) Unwrap() error { return e.Err }

// RedirectError is a redirect refused by CheckURL; retrying does not help.
type RedirectError struct{ err error }

func (e *RedirectError) Error() string { return e.err.Error() }
func (e *RedirectError) Unwrap() error { return e.err }

// HashError is content whose sha256 is not the expected one.
type HashError struct {
	Name             string // the file or URL
	Expected, Actual string // hex
}

func (e *HashError) Error() string {
	return fmt.Sprintf("sha256 of %s is %s, expected %s", e.Name, e.Actual, e.Expected)
}

// SizeError is content of another size than expected. When it is larger,
// reading stops one byte past, so Actual is Expected+1.
type SizeError struct {
	Name             string
	Expected, Actual int64
	Limit            bool // Expected is a limit, not a declared size
}

func (e *SizeError) Error() string {
	switch {
	case e.Limit:
		return fmt.Sprintf("%s is larger than the %d-byte limit", e.Name, e.Expected)
	case e.Actual > e.Expected:
		return fmt.Sprintf("%s is larger than the expected %d bytes", e.Name, e.Expected)
	}
	return fmt.Sprintf("%s has %d bytes, expected %d", e.Name, e.Actual, e.Expected)
}

// retryable marks a sink's error that a later attempt may not meet.
type retryable struct{ err error }

func (e *retryable) Error() string { return e.err.Error() }
func (e *retryable) Unwrap() error { return e.err }

// Retry marks err, returned by a sink, as worth another attempt.
func Retry(err error) error { return &retryable{err} }

// Get fetches rawURL and hands a 200 answer to sink. Network errors, 408,
// 429, 5xx, and a sink error caused by reading the body (or marked with
// Retry) are retried, so sink must start from scratch on each call. A
// file URL is read once, without retries. A failure for good is an
// *Error.
func (c *Client) Get(ctx context.Context, rawURL string, header http.Header, sink func(*Response) error) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return &Error{URL: rawURL, Attempts: 1, Err: err}
	}
	if u.Scheme == "file" {
		return c.getFile(u, sink)
	}
	for attempt := 1; ; attempt++ {
		after, again, err := c.try(ctx, u, header, sink)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return &Error{URL: u.Redacted(), Attempts: attempt, Err: ctx.Err()}
		}
		if !again || attempt > c.retries {
			return &Error{URL: u.Redacted(), Attempts: attempt, Err: err}
		}
		t := time.NewTimer(c.backoff(attempt, after))
		select {
		case <-ctx.Done():
			t.Stop()
			return &Error{URL: u.Redacted(), Attempts: attempt, Err: fmt.Errorf("%w (while waiting to retry after: %v)", ctx.Err(), err)}
		case <-t.C:
		}
	}
}

func (c *Client) getFile(u *url.URL, sink func(*Response) error) error {
	fail := func(err error) error { return &Error{URL: u.String(), Attempts: 1, Err: err} }
	f, err := os.Open(filepath.FromSlash(u.Path))
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	if info, err := f.Stat(); err != nil || !info.Mode().IsRegular() {
		return fail(fmt.Errorf("%q is not a regular file", u.Path))
	}
	if err := sink(&Response{Body: f, URL: u, Header: http.Header{}}); err != nil {
		var r *retryable
		if errors.As(err, &r) {
			err = r.err
		}
		return fail(err)
	}
	return nil
}

// try makes one attempt. It returns the error, whether another attempt
// may help, and the server's Retry-After.
func (c *Client) try(ctx context.Context, u *url.URL, header http.Header, sink func(*Response) error) (time.Duration, bool, error) {
	if c.sem != nil {
		select {
		case c.sem <- struct{}{}:
		case <-ctx.Done():
			return 0, false, ctx.Err()
		}
		defer func() { <-c.sem }()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, false, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var re *RedirectError
		if errors.As(err, &re) {
			return 0, false, re
		}
		return 0, ctx.Err() == nil, &NetError{Host: u.Host, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
		se := &StatusError{Code: resp.StatusCode, Status: resp.Status}
		return c.retryAfter(resp.Header.Get("Retry-After"), time.Now()), se.Temporary(), se
	}
	body := &bodyReader{r: resp.Body}
	err = sink(&Response{Body: body, URL: resp.Request.URL, Header: resp.Header})
	var r *retryable
	switch {
	case err == nil:
		return 0, false, nil
	case ctx.Err() != nil:
		return 0, false, ctx.Err()
	case body.err != nil:
		return 0, true, &NetError{Host: u.Host, Err: fmt.Errorf("read body: %w", body.err)}
	case errors.As(err, &r):
		return 0, true, r.err
	}
	return 0, false, err
}

// bodyReader remembers a read error, which tells a failed transfer from
// bad content or a failed write.
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

// backoff is the wait before retry number attempt: exponential, with
// jitter in [d/2, d] so that parallel requests do not retry in step, and
// at least the server's Retry-After.
func (c *Client) backoff(attempt int, after time.Duration) time.Duration {
	d := c.base << min(attempt-1, 30)
	if d > c.max || d <= 0 {
		d = c.max
	}
	d = d/2 + rand.N(d/2+1)
	return max(d, after)
}

// retryAfter parses a Retry-After header, in seconds or as an HTTP date,
// capped at the client's MaxRetryAfter. It returns 0 when the header is
// absent or unusable.
func (c *Client) retryAfter(v string, now time.Time) time.Duration {
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
	return min(d, c.maxRetryAfter)
}

// Copy copies body to w and checks it: exactly size bytes when size >= 0,
// else at most limit; and, when sha is set, that sha256. A body cut short
// is marked for Retry, since the connection may have closed at a clean
// boundary; one too long, or of another hash, is final. It returns the
// bytes copied.
func Copy(w io.Writer, body io.Reader, name string, size, limit int64, sha string) (int64, error) {
	max := limit
	if size >= 0 {
		max = size
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(body, max+1))
	switch {
	case err != nil:
		return n, err
	case n > max:
		return n, &SizeError{Name: name, Expected: max, Actual: max + 1, Limit: size < 0}
	case size >= 0 && n < size:
		return n, Retry(&SizeError{Name: name, Expected: size, Actual: n})
	}
	if got := hex.EncodeToString(h.Sum(nil)); sha != "" && got != sha {
		return n, &HashError{Name: name, Expected: sha, Actual: got}
	}
	return n, nil
}
