package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bitpoll-install/bitpoll-install/atomicfile"
	"github.com/bitpoll-install/bitpoll-install/progress"
)

// Defaults for the zero values of Downloader's fields.
const (
	DefaultParallel = 8
	DefaultRetries  = 4
)

const (
	// wheelsDir is the cache folder; its name carries the layout version,
	// so that a new layout never reads an old one.
	wheelsDir = "wheels-v1"
	// defaultRetryDelay is the first backoff; it doubles with each retry.
	defaultRetryDelay = 500 * time.Millisecond
	// maxRetryDelay caps the backoff and a server's Retry-After.
	maxRetryDelay = 30 * time.Second
	// stalePartialAge is how long a .partial file must sit untouched before
	// Fetch takes it for the leftover of a killed process. A live download
	// writes to it all the time.
	stalePartialAge = 24 * time.Hour
)

// Artifact is one file pinned by a lock: a wheel, or an sdist.
type Artifact struct {
	Name   string // file name, for messages and progress
	URL    string // https; file for local mirrors; http only on the loopback
	Size   int64  // bytes
	SHA256 string // 64 lowercase hex digits
}

// Downloader fills a content-addressed cache of artifacts: each file lives
// at <CacheDir>/wheels-v1/<sha256>, and only a complete file whose size and
// sha256 match its lock entry is ever put there. Several Downloaders, in one
// process or in several, may share a CacheDir.
type Downloader struct {
	CacheDir   string       // holds wheels-v1/
	HTTPClient *http.Client // nil means a client with the default transport
	Parallel   int          // downloads at once; 0 means DefaultParallel
	// Retries is how many times a download is retried after a network
	// error, a cut-short body or a 5xx, 408 or 429 answer, with exponential
	// backoff and jitter. 0 means DefaultRetries; negative means none.
	Retries int
	// Verify re-hashes cached files; without it a cached file of the right
	// size is trusted, as only verified files are ever renamed into place.
	Verify bool
	// Exclusive says the caller holds a lock that every Downloader of
	// CacheDir holds while it fetches: every partial file is then a dead
	// process's and is removed, whatever its age.
	Exclusive bool
	Progress  progress.Reporter // nil means progress.Nop

	// retryDelay is the first backoff; 0 means defaultRetryDelay. Tests
	// shorten it.
	retryDelay time.Duration
}

// HashError reports a file whose sha256 is not the one in the lock.
type HashError struct {
	Name             string
	Expected, Actual string // hex digests
}

func (e *HashError) Error() string {
	return fmt.Sprintf("sha256 of %q is %s, the lock expects %s", e.Name, e.Actual, e.Expected)
}

// SizeError reports a file whose size is not the one in the lock. When the
// file is larger, reading stops one byte past the lock's size, so Actual is
// Expected+1.
type SizeError struct {
	Name             string
	Expected, Actual int64
}

func (e *SizeError) Error() string {
	if e.Actual > e.Expected {
		return fmt.Sprintf("%q is larger than the lock's size of %d bytes", e.Name, e.Expected)
	}
	return fmt.Sprintf("%q has %d bytes, the lock's size is %d", e.Name, e.Actual, e.Expected)
}

// StatusError reports an HTTP answer other than 200 OK.
type StatusError struct {
	Code   int
	Status string
}

func (e *StatusError) Error() string { return "server answered " + e.Status }

// Path returns where the artifact with this sha256 lives in the cache.
func (d *Downloader) Path(sha256 string) string {
	return filepath.Join(d.CacheDir, wheelsDir, sha256)
}

// Fetch makes sure every artifact is in the cache, downloading the missing
// ones in parallel, and returns the cache path of each by sha256. A cached
// file of the right size costs no request. On error, files already fetched
// stay in the cache and no partial file is left behind.
func (d *Downloader) Fetch(ctx context.Context, arts []Artifact) (map[string]string, error) {
	todo, err := dedup(arts)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(d.CacheDir, wheelsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create wheel cache: %w", err)
	}
	if d.Exclusive {
		removeStalePartials(dir, 0)
	} else {
		removeStalePartials(dir, stalePartialAge)
	}

	rep := d.Progress
	if rep == nil {
		rep = progress.Nop{}
	}
	paths := make(map[string]string, len(todo))
	var missing []Artifact
	var missingBytes int64
	for _, a := range todo {
		p := d.Path(a.SHA256)
		ok, err := d.cached(a, p, rep)
		if err != nil {
			return nil, err
		}
		if ok {
			paths[a.SHA256] = p
			continue
		}
		missing = append(missing, a)
		missingBytes += a.Size
	}
	if len(missing) == 0 {
		return paths, nil
	}

	rep.Start(len(missing), missingBytes)
	defer rep.Finish()
	client := d.client()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(orDefault(d.Parallel, DefaultParallel))
	var mu sync.Mutex
	for _, a := range missing {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			// A slot may free up only because another download failed.
			if err := gctx.Err(); err != nil {
				return fmt.Errorf("fetch %q: %w", a.Name, err)
			}
			p, err := d.fetchOne(gctx, client, dir, a, rep)
			if err != nil {
				return err
			}
			mu.Lock()
			paths[a.SHA256] = p
			mu.Unlock()
			rep.Done(a.Name)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	// A cancel between the last download and here returns nothing, so the
	// caller never takes a partial result for a whole one.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("fetch wheels: %w", err)
	}
	return paths, nil
}

// orDefault returns n, or def when n is not positive.
func orDefault(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

// dedup checks the artifacts and drops repeated hashes: several lock
// entries may share one file.
func dedup(arts []Artifact) ([]Artifact, error) {
	bySum := make(map[string]Artifact, len(arts))
	var out []Artifact
	for _, a := range arts {
		if err := a.check(); err != nil {
			return nil, err
		}
		if prev, ok := bySum[a.SHA256]; ok {
			if prev.Size != a.Size {
				return nil, fmt.Errorf("check artifacts %q and %q: same sha256 %s but sizes %d and %d: fix the lock", prev.Name, a.Name, a.SHA256, prev.Size, a.Size)
			}
			continue
		}
		bySum[a.SHA256] = a
		out = append(out, a)
	}
	return out, nil
}

func (a *Artifact) check() error {
	if _, err := checkURL(a.URL); err != nil {
		return fmt.Errorf("check artifact %q: %w", a.Name, err)
	}
	if !isSHA256Hex(a.SHA256) {
		return fmt.Errorf("check artifact %q: sha256 %q is not 64 lowercase hex digits: fix the lock's hash", a.Name, a.SHA256)
	}
	if a.Size < 0 {
		return fmt.Errorf("check artifact %q: size %d is negative: fix the lock's size", a.Name, a.Size)
	}
	if a.Name == "" {
		u, _ := url.Parse(a.URL)
		a.Name = path.Base(u.Path)
	}
	return nil
}

func isSHA256Hex(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// checkURL accepts https URLs, http URLs on the loopback (test servers) and
// local file URLs.
func checkURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("URL %q does not parse: %w", raw, err)
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return nil, fmt.Errorf("URL %q has no host: want https://host/path", raw)
		}
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("URL %q is plain http: use https (http is only for a test server on localhost)", u.Redacted())
		}
	case "file":
		if (u.Host != "" && u.Host != "localhost") || !path.IsAbs(u.Path) {
			return nil, fmt.Errorf("URL %q is not a local file URL: want file:///absolute/path", raw)
		}
	default:
		return nil, fmt.Errorf("URL %q has scheme %q: want https or file", u.Redacted(), u.Scheme)
	}
	return u, nil
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// cached reports whether p holds the artifact. A file of the wrong size, or
// the wrong hash under Verify, was not written by a Downloader: it is
// removed, so that it is fetched again.
func (d *Downloader) cached(a Artifact, p string, rep progress.Reporter) (bool, error) {
	info, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check cached %q: %w", a.Name, err)
	}
	bad := ""
	switch {
	case !info.Mode().IsRegular():
		bad = "is not a regular file"
	case info.Size() != a.Size:
		bad = fmt.Sprintf("has %d bytes, want %d", info.Size(), a.Size)
	case d.Verify:
		sum, err := hashFile(p)
		if err != nil {
			return false, fmt.Errorf("verify cached %q: %w", a.Name, err)
		}
		if sum != a.SHA256 {
			bad = fmt.Sprintf("is damaged: its sha256 is %s, the lock says %s", sum, a.SHA256)
		}
	}
	if bad == "" {
		return true, nil
	}
	rep.Log(fmt.Sprintf("the cached %s (%s) %s: removed it; fetching it again", a.Name, p, bad))
	if err := os.RemoveAll(p); err != nil {
		return false, fmt.Errorf("remove bad cache entry for %q: %w", a.Name, err)
	}
	return false, nil
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// removeStalePartials deletes partial files left by killed processes. It is
// best effort: a leftover costs disk space, never correctness, as partial
// files are never read.
func removeStalePartials(dir string, age time.Duration) {
	matches, _ := filepath.Glob(filepath.Join(dir, "*.partial-*"))
	for _, m := range matches {
		if info, err := os.Lstat(m); err == nil && time.Since(info.ModTime()) >= age {
			os.Remove(m)
		}
	}
}

// client returns a copy of the HTTP client whose redirects are held to the
// same schemes as the lock's URLs.
func (d *Downloader) client() *http.Client {
	var c http.Client
	if d.HTTPClient != nil {
		c = *d.HTTPClient
	} else {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// The default keeps 2 idle connections per host; every download
		// usually goes to one host.
		t.MaxIdleConnsPerHost = orDefault(d.Parallel, DefaultParallel)
		t.ResponseHeaderTimeout = time.Minute
		c.Transport = t
	}
	next := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme == "file" {
			return &redirectError{fmt.Errorf("redirect to %q: a server may not point at a local file", req.URL.Redacted())}
		}
		if _, err := checkURL(req.URL.String()); err != nil {
			return &redirectError{fmt.Errorf("redirect refused: %w", err)}
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return &redirectError{errors.New("more than 10 redirects")}
		}
		return nil
	}
	return &c
}

// redirectError marks a refused redirect, which retrying does not help.
type redirectError struct{ err error }

func (e *redirectError) Error() string { return e.err.Error() }
func (e *redirectError) Unwrap() error { return e.err }

// retryable marks an error that a later attempt may not meet, with the
// server's Retry-After if it sent one.
type retryable struct {
	err   error
	after time.Duration
}

func (e *retryable) Error() string { return e.err.Error() }
func (e *retryable) Unwrap() error { return e.err }

// fetchOne downloads a into dir, retrying what may pass on a later try,
// and returns its cache path.
func (d *Downloader) fetchOne(ctx context.Context, client *http.Client, dir string, a Artifact, rep progress.Reporter) (string, error) {
	u, _ := checkURL(a.URL) // checked in dedup
	retries := d.Retries
	switch {
	case retries == 0:
		retries = DefaultRetries
	case retries < 0:
		retries = 0
	}
	var err error
	attempt := 0
	for ; ; attempt++ {
		err = d.attempt(ctx, client, u, dir, a, rep)
		var r *retryable
		if err == nil || !errors.As(err, &r) || attempt == retries {
			break
		}
		t := time.NewTimer(d.backoff(attempt, r.after))
		select {
		case <-ctx.Done():
			t.Stop()
			err = ctx.Err()
		case <-t.C:
			continue
		}
		break
	}
	if err == nil {
		return filepath.Join(dir, a.SHA256), nil
	}
	if ctx.Err() != nil {
		return "", fmt.Errorf("fetch %q: %w", a.Name, ctx.Err())
	}
	tries := ""
	if attempt > 0 {
		tries = fmt.Sprintf(" (gave up after %d attempts)", attempt+1)
	}
	return "", fmt.Errorf("fetch %q from %s: %w%s: %s", a.Name, u.Redacted(), err, tries, hint(err))
}

// hint says what the user can do about a failed download.
func hint(err error) string {
	var (
		he *HashError
		se *SizeError
		st *StatusError
		re *redirectError
	)
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return "the disk is full, not the network"
	case errors.As(err, &he), errors.As(err, &se) && se.Actual > se.Expected:
		return "the file at the URL is not the locked one; check the lock's URL, or re-lock if the file was replaced upstream"
	case errors.As(err, &re):
		return "check the lock's URL"
	case errors.As(err, &st) && st.Code >= 400 && st.Code < 500 && st.Code != http.StatusTooManyRequests:
		return "check the lock's URL"
	default:
		return "check the network or the lock's URL"
	}
}

// backoff returns the wait before retry number attempt+1: exponential,
// with jitter so that parallel downloads do not retry in step, and at
// least what the server asked for.
func (d *Downloader) backoff(attempt int, after time.Duration) time.Duration {
	base := d.retryDelay
	if base <= 0 {
		base = defaultRetryDelay
	}
	delay := min(base<<min(attempt, 16), maxRetryDelay)
	delay = delay/2 + rand.N(delay/2+1)
	return max(delay, min(after, maxRetryDelay))
}

// attempt makes one try at downloading a into dir. The body is streamed to
// a partial file while it is hashed and counted, and the partial file is
// renamed into place only when size and hash match.
func (d *Downloader) attempt(ctx context.Context, client *http.Client, u *url.URL, dir string, a Artifact, rep progress.Reporter) (err error) {
	body, err := open(ctx, client, u, a)
	if err != nil {
		return err
	}
	defer body.Close()

	tmp, err := os.CreateTemp(dir, a.SHA256+".partial-*")
	if err != nil {
		return fmt.Errorf("create partial file: %w", err)
	}
	var written int64
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			// The bar counts bytes of this attempt only once.
			rep.Add(a.Name, -written)
		}
	}()

	h := sha256.New()
	src := &readErr{r: &io.LimitedReader{R: body, N: a.Size + 1}}
	dst := io.MultiWriter(tmp, h, addFunc(func(n int) {
		written += int64(n)
		rep.Add(a.Name, int64(n))
	}))
	n, err := io.Copy(dst, src)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil && src.err != nil && u.Scheme != "file":
		return &retryable{err: fmt.Errorf("read body after %d bytes: %w", n, err)}
	case err != nil:
		return err
	case n > a.Size:
		return &SizeError{Name: a.Name, Expected: a.Size, Actual: n}
	case n < a.Size:
		err = &SizeError{Name: a.Name, Expected: a.Size, Actual: n}
		if u.Scheme != "file" {
			err = &retryable{err: err} // a connection cut at a clean boundary
		}
		return err
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != a.SHA256 {
		return &HashError{Name: a.Name, Expected: a.SHA256, Actual: sum}
	}
	return install(tmp, filepath.Join(dir, a.SHA256), a.Size)
}

// install makes the verified partial file tmp durable and moves it to
// final. When another process got there first, its copy (the same bytes)
// is kept and tmp is removed.
func install(tmp *os.File, final string, size int64) error {
	// Cache entries are never written again once in place.
	if err := tmp.Chmod(0o444); err != nil {
		return fmt.Errorf("chmod partial file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync partial file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close partial file: %w", err)
	}
	if info, err := os.Lstat(final); err == nil && info.Mode().IsRegular() && info.Size() == size {
		os.Remove(tmp.Name())
		return nil
	}
	// rename(2) is atomic: readers see the old name absent or the whole
	// file, never a part.
	if err := os.Rename(tmp.Name(), final); err != nil {
		return fmt.Errorf("move into cache: %w", err)
	}
	return atomicfile.SyncDir(filepath.Dir(final))
}

// open returns the body of the artifact at u.
func open(ctx context.Context, client *http.Client, u *url.URL, a Artifact) (io.ReadCloser, error) {
	if u.Scheme == "file" {
		f, err := os.Open(filepath.FromSlash(u.Path))
		if err != nil {
			return nil, err
		}
		if info, err := f.Stat(); err != nil || !info.Mode().IsRegular() {
			f.Close()
			return nil, fmt.Errorf("%q is not a regular file", u.Path)
		}
		return f, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "bitpoll-install")
	resp, err := client.Do(req)
	if err != nil {
		var re *redirectError
		if ctx.Err() != nil || errors.As(err, &re) {
			return nil, err
		}
		return nil, &retryable{err: err}
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		err := &StatusError{Code: resp.StatusCode, Status: resp.Status}
		switch c := resp.StatusCode; {
		case c >= 500, c == http.StatusTooManyRequests, c == http.StatusRequestTimeout:
			return nil, &retryable{err: err, after: retryAfter(resp)}
		}
		return nil, err
	}
	if resp.ContentLength > a.Size {
		resp.Body.Close()
		return nil, &SizeError{Name: a.Name, Expected: a.Size, Actual: a.Size + 1}
	}
	return resp.Body, nil
}

// retryAfter reads a Retry-After header given in seconds; the HTTP-date
// form is rare from file servers and is ignored.
func retryAfter(resp *http.Response) time.Duration {
	s, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || s < 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}

// readErr remembers the error of its reader, which tells a failed read
// (the network) from a failed write (the disk).
type readErr struct {
	r   io.Reader
	err error
}

func (r *readErr) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// addFunc is a Writer that only counts.
type addFunc func(n int)

func (f addFunc) Write(p []byte) (int, error) {
	f(len(p))
	return len(p), nil
}

// WheelsCache is the download cache's folder under a cache directory;
// gc frees its entries that no kept store path uses.
func WheelsCache(cacheDir string) string { return filepath.Join(cacheDir, wheelsDir) }
