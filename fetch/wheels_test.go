package fetch

import (
	"github.com/bitpoll-install/bitpoll-install/httpretry"

	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// wheelServer serves generated files and counts requests. Unless serve is
// set, each path gets its file with a Content-Length.
type wheelServer struct {
	*httptest.Server
	mu          sync.Mutex
	files       map[string][]byte
	requests    map[string]int
	inFlight    int
	maxInFlight int
	// serve, when set, answers instead; n counts the requests for the path,
	// from 1.
	serve func(w http.ResponseWriter, r *http.Request, n int, body []byte)
}

func newWheelServer(t *testing.T) *wheelServer {
	s := &wheelServer{files: map[string][]byte{}, requests: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.Close)
	return s
}

func (s *wheelServer) handle(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests[r.URL.Path]++
	n := s.requests[r.URL.Path]
	body, ok := s.files[r.URL.Path]
	s.inFlight++
	s.maxInFlight = max(s.maxInFlight, s.inFlight)
	serve := s.serve
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()
	switch {
	case !ok:
		http.NotFound(w, r)
	case serve != nil:
		serve(w, r, n, body)
	default:
		writeBody(w, body)
	}
}

func writeBody(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

func (s *wheelServer) peak() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInFlight
}

func (s *wheelServer) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.requests {
		n += c
	}
	return n
}

// waitInFlight blocks until n requests have been in flight at once, or a
// while has passed. Once n is reached, later requests pass at once.
func (s *wheelServer) waitInFlight(n int) {
	deadline := time.Now().Add(5 * time.Second)
	for s.peak() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

// add puts a file of size random bytes on the server and returns its
// artifact.
func (s *wheelServer) add(name string, size int) Artifact {
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(uint64(size), uint64(len(name))))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	s.mu.Lock()
	s.files["/"+name] = data
	s.mu.Unlock()
	sum := sha256.Sum256(data)
	return Artifact{Name: name, URL: s.URL + "/" + name, Size: int64(size), SHA256: hex.EncodeToString(sum[:])}
}

func (s *wheelServer) downloader(cache string) *Downloader {
	return &Downloader{CacheDir: cache, HTTPClient: s.Client(), retryDelay: time.Millisecond, Progress: &recorder{}}
}

// recorder is a progress.Reporter that keeps what it is told.
type recorder struct {
	mu         sync.Mutex
	starts     int
	total      int
	totalBytes int64
	bytes      int64
	done       []string
	logs       []string
	finished   bool
}

func (r *recorder) Start(total int, totalBytes int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.starts++
	r.total, r.totalBytes = total, totalBytes
}

func (r *recorder) Add(name string, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bytes += n
}

func (r *recorder) Done(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = append(r.done, name)
}

func (r *recorder) Log(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, msg)
}

func (r *recorder) Finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finished = true
}

// cacheEntries lists the cache folder: final files and partial ones alike.
func cacheEntries(t *testing.T, cache string) []string {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(cache, wheelsDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return names(des)
}

// checkFetched asserts that every artifact is in paths, at its cache
// address, with its content, and that nothing else is in the cache.
func checkFetched(t *testing.T, s *wheelServer, cache string, paths map[string]string, arts []Artifact) {
	t.Helper()
	for _, a := range arts {
		p, ok := paths[a.SHA256]
		if !ok {
			t.Errorf("Fetch result has no path for %s", a.Name)
			continue
		}
		if want := filepath.Join(cache, wheelsDir, a.SHA256); p != want {
			t.Errorf("Fetch path of %s = %q, want %q", a.Name, p, want)
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("read fetched %s: %v", a.Name, err)
			continue
		}
		u, _ := url.Parse(a.URL)
		if !bytes.Equal(got, s.files[u.Path]) {
			t.Errorf("fetched %s differs from the served file", a.Name)
		}
	}
	if got := cacheEntries(t, cache); len(got) != len(arts) {
		t.Errorf("cache holds %q, want exactly the %d fetched files", got, len(arts))
	}
}

func TestFetchParallel(t *testing.T) {
	s := newWheelServer(t)
	const parallel = 4
	var arts []Artifact
	var size int64
	for i := range 20 {
		a := s.add(fmt.Sprintf("pkg%d-1.0-py3-none-any.whl", i), 1000+i*997)
		arts = append(arts, a)
		size += a.Size
	}
	// Each request waits until the limit is reached, so a Downloader that
	// ignored it would show more in flight.
	s.serve = func(w http.ResponseWriter, r *http.Request, n int, body []byte) {
		s.waitInFlight(parallel)
		writeBody(w, body)
	}
	cache := t.TempDir()
	d := s.downloader(cache)
	d.Parallel = parallel
	paths, err := d.Fetch(context.Background(), arts)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	checkFetched(t, s, cache, paths, arts)
	if s.peak() != parallel {
		t.Errorf("max requests in flight = %d, want %d (Parallel)", s.peak(), parallel)
	}
	if got := s.total(); got != len(arts) {
		t.Errorf("requests = %d, want %d", got, len(arts))
	}
	rec := d.Progress.(*recorder)
	if rec.total != len(arts) || rec.totalBytes != size || rec.bytes != size || len(rec.done) != len(arts) || !rec.finished {
		t.Errorf("progress saw total %d (%d bytes), %d bytes, %d done, finished %v; want %d (%d bytes), %d bytes, %d done, finished",
			rec.total, rec.totalBytes, rec.bytes, len(rec.done), rec.finished, len(arts), size, size, len(arts))
	}
}

func TestFetchDefaultParallel(t *testing.T) {
	s := newWheelServer(t)
	var arts []Artifact
	for i := range 2 * DefaultParallel {
		arts = append(arts, s.add(fmt.Sprintf("p%d.whl", i), 100+i))
	}
	s.serve = func(w http.ResponseWriter, r *http.Request, n int, body []byte) {
		s.waitInFlight(DefaultParallel)
		writeBody(w, body)
	}
	if _, err := s.downloader(t.TempDir()).Fetch(context.Background(), arts); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if s.peak() != DefaultParallel {
		t.Errorf("max requests in flight = %d, want %d (DefaultParallel)", s.peak(), DefaultParallel)
	}
}

func TestFetchCacheHit(t *testing.T) {
	s := newWheelServer(t)
	arts := []Artifact{s.add("a.whl", 5000), s.add("b.whl", 7000), s.add("c.whl", 0)}
	cache := t.TempDir()
	if _, err := s.downloader(cache).Fetch(context.Background(), arts); err != nil {
		t.Fatalf("first Fetch: %v", err)
	}
	before := s.total()
	for _, verify := range []bool{false, true} {
		d := s.downloader(cache)
		d.Verify = verify
		paths, err := d.Fetch(context.Background(), arts)
		if err != nil {
			t.Fatalf("Fetch with Verify=%v: %v", verify, err)
		}
		checkFetched(t, s, cache, paths, arts)
		if got := s.total() - before; got != 0 {
			t.Errorf("Fetch of cached files with Verify=%v made %d requests, want 0", verify, got)
		}
		if rec := d.Progress.(*recorder); rec.starts != 0 {
			t.Errorf("Fetch of cached files with Verify=%v started progress %d times, want 0", verify, rec.starts)
		}
	}
}

func TestFetchBadCacheEntry(t *testing.T) {
	tests := []struct {
		name     string
		verify   bool
		corrupt  func(data []byte) []byte
		requests int
	}{
		{"short file", false, func(b []byte) []byte { return b[:len(b)-1] }, 1},
		{"flipped byte, verify", true, func(b []byte) []byte { b[0] ^= 1; return b }, 1},
		// Without Verify, size is all that is checked: only a Downloader
		// writes there, and it verifies first.
		{"flipped byte, no verify", false, func(b []byte) []byte { b[0] ^= 1; return b }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newWheelServer(t)
			a := s.add("a.whl", 4096)
			cache := t.TempDir()
			d := s.downloader(cache)
			p := d.Path(a.SHA256)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, p, tt.corrupt(bytes.Clone(s.files["/a.whl"])))
			d.Verify = tt.verify
			if _, err := d.Fetch(context.Background(), []Artifact{a}); err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if got := s.total(); got != tt.requests {
				t.Errorf("requests = %d, want %d", got, tt.requests)
			}
			if tt.requests > 0 {
				checkFetched(t, s, cache, map[string]string{a.SHA256: p}, []Artifact{a})
			}
		})
	}
}

func TestFetchRefused(t *testing.T) {
	tests := []struct {
		name     string
		serve    func(w http.ResponseWriter, r *http.Request, n int, body []byte)
		wantErr  any // pointer to the error type
		requests int // Retries is 2
		inMsg    []string
	}{
		{
			name: "hash mismatch",
			serve: func(w http.ResponseWriter, r *http.Request, n int, body []byte) {
				bad := bytes.Clone(body)
				bad[len(bad)/2] ^= 0xff
				writeBody(w, bad)
			},
			wantErr: new(*httpretry.HashError), requests: 1,
			inMsg: []string{"expected", "check the lock's URL"},
		},
		{
			name: "too big, declared",
			serve: func(w http.ResponseWriter, r *http.Request, n int, body []byte) {
				writeBody(w, append(bytes.Clone(body), "more"...))
			},
			wantErr: new(*httpretry.SizeError), requests: 1,
			inMsg: []string{"larger than the expected 3000 bytes"},
		},
		{
			name: "too big, chunked",
			serve: func(w http.ResponseWriter, r *http.Request, n int, body []byte) {
				w.Write(body)
				w.(http.Flusher).Flush()
				w.Write(make([]byte, 1<<20))
			},
			wantErr: new(*httpretry.SizeError), requests: 1,
			inMsg: []string{"larger than the expected 3000 bytes"},
		},
		{
			name: "too small",
			serve: func(w http.ResponseWriter, r *http.Request, n int, body []byte) {
				writeBody(w, body[:len(body)-10])
			},
			wantErr: new(*httpretry.SizeError), requests: 3,
			inMsg: []string{"has 2990 bytes, expected 3000", "gave up after 3 attempts", "check the network"},
		},
		{
			name: "not found",
			serve: func(w http.ResponseWriter, r *http.Request, n int, body []byte) {
				http.NotFound(w, r)
			},
			wantErr: new(*httpretry.StatusError), requests: 1,
			inMsg: []string{"404 Not Found", "check the lock's URL"},
		},
		{
			name: "always 503",
			serve: func(w http.ResponseWriter, r *http.Request, n int, body []byte) {
				w.WriteHeader(http.StatusServiceUnavailable)
			},
			wantErr: new(*httpretry.StatusError), requests: 3,
			inMsg: []string{"503 Service Unavailable", "gave up after 3 attempts", "check the network or the lock's URL"},
		},
		{
			name: "redirect to plain http",
			serve: func(w http.ResponseWriter, r *http.Request, n int, body []byte) {
				http.Redirect(w, r, "http://example.com/a.whl", http.StatusFound)
			},
			wantErr: new(*httpretry.RedirectError), requests: 1,
			inMsg: []string{`"http://example.com/a.whl" is plain http`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newWheelServer(t)
			a := s.add("a-1.0-py3-none-any.whl", 3000)
			s.serve = tt.serve
			cache := t.TempDir()
			d := s.downloader(cache)
			d.Retries = 2
			paths, err := d.Fetch(context.Background(), []Artifact{a})
			if err == nil {
				t.Fatalf("Fetch = %v, nil; want an error", paths)
			}
			if !errors.As(err, tt.wantErr) {
				t.Errorf("Fetch error = %v (%T), want a %T", err, err, tt.wantErr)
			}
			msg := err.Error()
			for _, want := range append([]string{`"a-1.0-py3-none-any.whl"`, a.URL}, tt.inMsg...) {
				if !strings.Contains(msg, want) {
					t.Errorf("Fetch error = %q, want it to mention %q", msg, want)
				}
			}
			if got := s.total(); got != tt.requests {
				t.Errorf("requests = %d, want %d", got, tt.requests)
			}
			if got := cacheEntries(t, cache); len(got) != 0 {
				t.Errorf("cache holds %q after a refused download, want nothing", got)
			}
			if rec := d.Progress.(*recorder); rec.bytes != 0 || len(rec.done) != 0 {
				t.Errorf("progress counted %d bytes and %d done files for a refused download, want 0 and 0", rec.bytes, len(rec.done))
			}
		})
	}
}

func TestHashErrorNamesBothHashes(t *testing.T) {
	s := newWheelServer(t)
	a := s.add("a.whl", 100)
	s.serve = func(w http.ResponseWriter, r *http.Request, n int, body []byte) {
		writeBody(w, make([]byte, len(body)))
	}
	_, err := s.downloader(t.TempDir()).Fetch(context.Background(), []Artifact{a})
	var he *httpretry.HashError
	if !errors.As(err, &he) {
		t.Fatalf("Fetch error = %v, want a *HashError", err)
	}
	zeros := sha256.Sum256(make([]byte, 100))
	if he.Expected != a.SHA256 || he.Actual != hex.EncodeToString(zeros[:]) {
		t.Errorf("HashError = {Expected %s, Actual %s}, want {%s, %x}", he.Expected, he.Actual, a.SHA256, zeros)
	}
	for _, h := range []string{he.Expected, he.Actual} {
		if !strings.Contains(err.Error(), h) {
			t.Errorf("Fetch error = %q, want it to name hash %s", err, h)
		}
	}
}

func TestFetchRetries(t *testing.T) {
	tests := []struct {
		name  string
		first func(w http.ResponseWriter, r *http.Request, body []byte)
	}{
		{"503", func(w http.ResponseWriter, r *http.Request, body []byte) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}},
		{"429 with Retry-After", func(w http.ResponseWriter, r *http.Request, body []byte) {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
		}},
		{"body cut mid-stream", func(w http.ResponseWriter, r *http.Request, body []byte) {
			// Less than the declared length: the server closes the
			// connection.
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body[:len(body)/2])
			w.(http.Flusher).Flush()
		}},
		{"connection dropped", func(w http.ResponseWriter, r *http.Request, body []byte) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newWheelServer(t)
			a := s.add("a.whl", 200_000)
			s.serve = func(w http.ResponseWriter, r *http.Request, n int, body []byte) {
				if n == 1 {
					tt.first(w, r, body)
					return
				}
				writeBody(w, body)
			}
			cache := t.TempDir()
			d := s.downloader(cache)
			paths, err := d.Fetch(context.Background(), []Artifact{a})
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			checkFetched(t, s, cache, paths, []Artifact{a})
			if got := s.total(); got != 2 {
				t.Errorf("requests = %d, want 2", got)
			}
			// The bytes of the failed attempt are taken back.
			if rec := d.Progress.(*recorder); rec.bytes != a.Size {
				t.Errorf("progress counted %d bytes, want %d", rec.bytes, a.Size)
			}
		})
	}
}

func TestFetchNoRetries(t *testing.T) {
	s := newWheelServer(t)
	a := s.add("a.whl", 10)
	s.serve = func(w http.ResponseWriter, r *http.Request, n int, body []byte) {
		w.WriteHeader(http.StatusBadGateway)
	}
	d := s.downloader(t.TempDir())
	d.Retries = -1
	if _, err := d.Fetch(context.Background(), []Artifact{a}); err == nil {
		t.Fatal("Fetch = nil error, want 502")
	}
	if got := s.total(); got != 1 {
		t.Errorf("requests with Retries=-1 = %d, want 1", got)
	}
}

func TestFetchCancel(t *testing.T) {
	s := newWheelServer(t)
	a := s.add("a.whl", 100_000)
	b := s.add("b.whl", 100)
	started := make(chan struct{}, 1)
	s.serve = func(w http.ResponseWriter, r *http.Request, n int, body []byte) {
		if r.URL.Path == "/b.whl" {
			writeBody(w, body)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		started <- struct{}{}
		<-r.Context().Done()
	}
	cache := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-started
		// Let the client write some of the body to its partial file.
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	d := s.downloader(cache)
	d.Parallel = 1
	paths, err := d.Fetch(ctx, []Artifact{a, b})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Fetch = %v, %v; want context.Canceled", paths, err)
	}
	if got := cacheEntries(t, cache); len(got) != 0 {
		t.Errorf("cache holds %q after a cancel, want nothing", got)
	}
	if got := s.total(); got != 1 {
		t.Errorf("requests = %d, want 1 (nothing starts after the cancel)", got)
	}
}

func TestFetchRace(t *testing.T) {
	s := newWheelServer(t)
	a := s.add("a.whl", 300_000)
	const racers = 3
	// Every racer's request is in flight before any is answered, so each
	// writes its own partial file and renames it in.
	s.serve = func(w http.ResponseWriter, r *http.Request, n int, body []byte) {
		s.waitInFlight(racers)
		writeBody(w, body)
	}
	cache := t.TempDir()
	var wg sync.WaitGroup
	results := make([]map[string]string, racers)
	errs := make([]error, racers)
	for i := range racers {
		wg.Go(func() {
			// Separate Downloaders with separate clients, as separate
			// processes would be.
			d := &Downloader{CacheDir: cache, HTTPClient: &http.Client{Transport: &http.Transport{}}}
			results[i], errs[i] = d.Fetch(context.Background(), []Artifact{a})
		})
	}
	wg.Wait()
	for i := range racers {
		if errs[i] != nil {
			t.Fatalf("racer %d: Fetch: %v", i, errs[i])
		}
		checkFetched(t, s, cache, results[i], []Artifact{a})
	}
	if s.peak() != racers {
		t.Errorf("max requests in flight = %d, want %d: the racers did not overlap", s.peak(), racers)
	}
	if got := s.total(); got != racers {
		t.Errorf("requests = %d, want %d (one per racer)", got, racers)
	}
}

func TestFetchDedup(t *testing.T) {
	s := newWheelServer(t)
	a := s.add("a.whl", 1000)
	b := a
	b.Name = "a-copy.whl"
	cache := t.TempDir()
	paths, err := s.downloader(cache).Fetch(context.Background(), []Artifact{a, b})
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	checkFetched(t, s, cache, paths, []Artifact{a})
	if got := s.total(); got != 1 {
		t.Errorf("requests for one file listed twice = %d, want 1", got)
	}
	b.Size++
	if _, err := s.downloader(t.TempDir()).Fetch(context.Background(), []Artifact{a, b}); err == nil || !strings.Contains(err.Error(), "same sha256") {
		t.Errorf("Fetch of one hash with two sizes = %v, want a \"same sha256\" error", err)
	}
}

func TestFetchFileURL(t *testing.T) {
	dir := t.TempDir()
	data := []byte("a local wheel")
	src := filepath.Join(dir, "local.whl")
	mustWrite(t, src, data)
	sum := sha256.Sum256(data)
	a := Artifact{Name: "local.whl", URL: "file://" + filepath.ToSlash(src), Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
	cache := t.TempDir()
	d := &Downloader{CacheDir: cache}
	paths, err := d.Fetch(context.Background(), []Artifact{a})
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if got, err := os.ReadFile(paths[a.SHA256]); err != nil || !bytes.Equal(got, data) {
		t.Errorf("fetched file = %q, %v; want %q", got, err, data)
	}

	big := a
	big.SHA256 = strings.Repeat("0", 64)
	big.Size--
	_, err = d.Fetch(context.Background(), []Artifact{big})
	var se *httpretry.SizeError
	if !errors.As(err, &se) {
		t.Errorf("Fetch of a file larger than the lock's size = %v, want a *SizeError", err)
	}
}

func TestFetchBadArtifact(t *testing.T) {
	good := Artifact{Name: "a.whl", URL: "https://files.example/a.whl", Size: 1, SHA256: strings.Repeat("ab", 32)}
	tests := []struct {
		name   string
		change func(a *Artifact)
		want   string
	}{
		{"short hash", func(a *Artifact) { a.SHA256 = "abc" }, `sha256 "abc" is not 64 lowercase hex digits`},
		{"upper-case hash", func(a *Artifact) { a.SHA256 = strings.ToUpper(a.SHA256) }, "is not 64 lowercase hex digits"},
		{"path in hash", func(a *Artifact) { a.SHA256 = "../" + a.SHA256[3:] }, "is not 64 lowercase hex digits"},
		{"plain http", func(a *Artifact) { a.URL = "http://files.example/a.whl" }, "is plain http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := good
			tt.change(&a)
			// No client: a request would fail the test with a different
			// error.
			cache := t.TempDir()
			d := &Downloader{CacheDir: cache}
			_, err := d.Fetch(context.Background(), []Artifact{a})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `"a.whl"`) {
				t.Errorf("Fetch(%+v) = %v, want an error naming \"a.whl\" and containing %q", a, err, tt.want)
			}
			if got := cacheEntries(t, cache); len(got) != 0 {
				t.Errorf("cache holds %q, want nothing", got)
			}
		})
	}
}

func TestRemoveStalePartials(t *testing.T) {
	cache := t.TempDir()
	dir := filepath.Join(cache, wheelsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, strings.Repeat("a", 64)+".partial-1")
	fresh := filepath.Join(dir, strings.Repeat("b", 64)+".partial-2")
	mustWrite(t, stale, []byte("x"))
	mustWrite(t, fresh, []byte("y"))
	old := time.Now().Add(-2 * stalePartialAge)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Downloader{CacheDir: cache}).Fetch(context.Background(), nil); err != nil {
		t.Fatalf("Fetch(nil): %v", err)
	}
	got := cacheEntries(t, cache)
	if want := []string{filepath.Base(fresh)}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("cache after Fetch = %q, want %q (the stale partial removed, the fresh one kept)", got, want)
	}
	// A Downloader that holds the cache's lock knows the fresh one is
	// dead too.
	if _, err := (&Downloader{CacheDir: cache, Exclusive: true}).Fetch(context.Background(), nil); err != nil {
		t.Fatalf("Fetch(nil) with Exclusive: %v", err)
	}
	if got := cacheEntries(t, cache); len(got) != 0 {
		t.Errorf("cache after an Exclusive Fetch = %q, want no partial file left", got)
	}
}

// TestFetchUnknownSize: an artifact whose size the lock does not know (a
// standalone interpreter locked offline) is fetched and checked by its
// hash alone; a cached copy is re-hashed, even without Verify, since its
// size proves nothing; and a body of another hash is refused.
func TestFetchUnknownSize(t *testing.T) {
	s := newWheelServer(t)
	a := s.add("python.tar.gz", 6000)
	a.Size = -1
	cache := t.TempDir()
	paths, err := s.downloader(cache).Fetch(context.Background(), []Artifact{a})
	if err != nil {
		t.Fatalf("Fetch of unknown size: %v", err)
	}
	if got, err := os.ReadFile(paths[a.SHA256]); err != nil || !bytes.Equal(got, s.files["/python.tar.gz"]) {
		t.Fatalf("cached file = %d bytes, %v; want the served 6000", len(got), err)
	}
	// A damaged cache entry of the same length: refetched.
	p := paths[a.SHA256]
	damaged := bytes.Clone(s.files["/python.tar.gz"])
	damaged[10] ^= 1
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, p, damaged)
	if _, err := s.downloader(cache).Fetch(context.Background(), []Artifact{a}); err != nil {
		t.Fatalf("Fetch over a damaged entry: %v", err)
	}
	if got := s.total(); got != 2 {
		t.Errorf("requests = %d, want 2 (the damaged entry fetched again)", got)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, s.files["/python.tar.gz"]) {
		t.Errorf("the damaged entry was kept")
	}
	// Another hash: refused, nothing cached.
	bad := a
	bad.SHA256 = strings.Repeat("0", 64)
	cache2 := t.TempDir()
	_, err = s.downloader(cache2).Fetch(context.Background(), []Artifact{bad})
	var he *httpretry.HashError
	if !errors.As(err, &he) {
		t.Errorf("Fetch of another hash, unknown size = %v, want a *HashError", err)
	}
	if got := cacheEntries(t, cache2); len(got) != 0 {
		t.Errorf("cache holds %q after a refused download, want nothing", got)
	}
}
