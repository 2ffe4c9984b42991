package fetch

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bitpoll-install/bitpoll-install/atomicfile"
	"github.com/bitpoll-install/bitpoll-install/httpretry"
	"github.com/bitpoll-install/bitpoll-install/progress"
	"github.com/bitpoll-install/bitpoll-install/treehash"
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
	// maxRetryDelay caps the backoff.
	maxRetryDelay = 30 * time.Second
	// stalePartialAge is how long a .partial file must sit untouched before
	// Fetch takes it for the leftover of a killed process. A live download
	// writes to it all the time.
	stalePartialAge = 24 * time.Hour
)

// Artifact is one file pinned by a lock: a wheel, or an sdist.
type Artifact struct {
	Name string // file name, for messages and progress
	URL  string // https; file for local mirrors; http only on the loopback
	// Size is in bytes; negative when the lock does not know it (a
	// standalone interpreter locked without downloading it). Then at
	// most MaxUnknownSize bytes are read, and a cached copy is re-hashed
	// before it is trusted.
	Size   int64
	SHA256 string // 64 lowercase hex digits
}

// MaxUnknownSize bounds the download of an artifact of unknown size.
const MaxUnknownSize = 1 << 30

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

	// retryDelay is the first backoff; 0 means httpretry's default. Tests
	// shorten it.
	retryDelay time.Duration
}

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
		missingBytes += max(a.Size, 0)
	}
	if len(missing) == 0 {
		return paths, nil
	}

	rep.Start(len(missing), missingBytes)
	defer rep.Finish()
	client := httpretry.New(httpretry.Options{
		HTTP: d.HTTPClient, Retries: d.Retries, BaseDelay: d.retryDelay, MaxDelay: maxRetryDelay,
		UserAgent: "bitpoll-install", Parallel: orDefault(d.Parallel, DefaultParallel),
	})
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
	if _, err := httpretry.CheckURL(a.URL); err != nil {
		return fmt.Errorf("check artifact %q: %w", a.Name, err)
	}
	if !isSHA256Hex(a.SHA256) {
		return fmt.Errorf("check artifact %q: sha256 %q is not 64 lowercase hex digits: fix the lock's hash", a.Name, a.SHA256)
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
	case a.Size >= 0 && info.Size() != a.Size:
		bad = fmt.Sprintf("has %d bytes, want %d", info.Size(), a.Size)
	case d.Verify || a.Size < 0:
		sum, _, err := treehash.FileSHA256(p)
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

// fetchOne downloads a into dir through client, which retries what may
// pass on a later try, and returns its cache path. Each attempt streams
// the body to a partial file while it is hashed and counted, and the
// partial file is renamed into place only when size and hash match.
func (d *Downloader) fetchOne(ctx context.Context, client *httpretry.Client, dir string, a Artifact, rep progress.Reporter) (string, error) {
	final := filepath.Join(dir, a.SHA256)
	err := client.Get(ctx, a.URL, nil, func(r *httpretry.Response) (err error) {
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
		count := addFunc(func(n int) {
			written += int64(n)
			rep.Add(a.Name, int64(n))
		})
		if _, err := httpretry.Copy(io.MultiWriter(tmp, count), r.Body, a.Name, a.Size, MaxUnknownSize, a.SHA256); err != nil {
			return err
		}
		return install(tmp, final, a.Size)
	})
	if err == nil {
		return final, nil
	}
	if ctx.Err() != nil {
		return "", fmt.Errorf("fetch %q: %w", a.Name, ctx.Err())
	}
	u, _ := url.Parse(a.URL) // checked in dedup
	return "", fmt.Errorf("fetch %q from %s: %w: %s", a.Name, u.Redacted(), err, hint(err))
}

// hint says what the user can do about a failed download.
func hint(err error) string {
	var (
		he *httpretry.HashError
		se *httpretry.SizeError
		st *httpretry.StatusError
		re *httpretry.RedirectError
	)
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return "the disk is full, not the network"
	case errors.As(err, &he), errors.As(err, &se) && se.Actual > se.Expected:
		return "the file at the URL is not the locked one; check the lock's URL, or re-lock if the file was replaced upstream"
	case errors.As(err, &re):
		return "check the lock's URL"
	case errors.As(err, &st) && !st.Temporary():
		return "check the lock's URL"
	default:
		return "check the network or the lock's URL"
	}
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

// addFunc is a Writer that only counts.
type addFunc func(n int)

func (f addFunc) Write(p []byte) (int, error) {
	f(len(p))
	return len(p), nil
}

// WheelsCache is the download cache's folder under a cache directory;
// gc frees its entries that no kept store path uses.
func WheelsCache(cacheDir string) string { return filepath.Join(cacheDir, wheelsDir) }
