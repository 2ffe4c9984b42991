package httpretry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var body = []byte(strings.Repeat("wheel bytes ", 100))

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// server answers the n-th request (from 1) with serve.
func server(t *testing.T, serve func(w http.ResponseWriter, r *http.Request, n int)) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, int(hits.Add(1)))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func fast(o Options) *Client {
	o.BaseDelay = time.Millisecond
	return New(o)
}

// download gets url into memory through Copy, checking size and hash.
func download(c *Client, url string) ([]byte, error) {
	var buf bytes.Buffer
	err := c.Get(context.Background(), url, nil, func(r *Response) error {
		buf.Reset()
		_, err := Copy(&buf, r.Body, "a.whl", int64(len(body)), 0, sum(body))
		return err
	})
	return buf.Bytes(), err
}

func TestRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		serve    func(w http.ResponseWriter, n int)
		retries  int
		requests int32
		wantErr  any // a pointer to the error type, or nil for success
		msg      string
	}{
		{"503 then 200", func(w http.ResponseWriter, n int) {
			if n <= 2 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.Write(body)
		}, 4, 3, nil, ""},
		{"429 and 408 then 200", func(w http.ResponseWriter, n int) {
			switch n {
			case 1:
				w.WriteHeader(http.StatusTooManyRequests)
			case 2:
				w.WriteHeader(http.StatusRequestTimeout)
			default:
				w.Write(body)
			}
		}, 4, 3, nil, ""},
		{"always 502", func(w http.ResponseWriter, n int) { w.WriteHeader(http.StatusBadGateway) },
			2, 3, new(*StatusError), "the server answered 502 Bad Gateway (gave up after 3 attempts)"},
		{"404 is final", func(w http.ResponseWriter, n int) { w.WriteHeader(http.StatusNotFound) },
			4, 1, new(*StatusError), "404 Not Found"},
		{"cut body then whole", func(w http.ResponseWriter, n int) {
			if n == 1 {
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				w.Write(body[:10]) // the connection closes early
				return
			}
			w.Write(body)
		}, 4, 2, nil, ""},
		{"short body at a clean boundary", func(w http.ResponseWriter, n int) { w.Write(body[:len(body)-1]) },
			2, 3, new(*SizeError), "has 1199 bytes, expected 1200"},
		{"hash mismatch is final", func(w http.ResponseWriter, n int) {
			bad := bytes.Clone(body)
			bad[0] ^= 1
			w.Write(bad)
		}, 4, 1, new(*HashError), "expected " + sum(body)},
		{"too long is final", func(w http.ResponseWriter, n int) { w.Write(append(bytes.Clone(body), 'x')) },
			4, 1, new(*SizeError), "larger than the expected 1200 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, hits := server(t, func(w http.ResponseWriter, r *http.Request, n int) { tc.serve(w, n) })
			got, err := download(fast(Options{Retries: tc.retries}), srv.URL+"/a.whl")
			if tc.wantErr == nil {
				if err != nil || !bytes.Equal(got, body) {
					t.Fatalf("Get = %d bytes, %v; want the body", len(got), err)
				}
			} else if !errors.As(err, tc.wantErr) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Get = %v, want a %T containing %q", err, tc.wantErr, tc.msg)
			}
			if hits.Load() != tc.requests {
				t.Errorf("server saw %d requests, want %d", hits.Load(), tc.requests)
			}
		})
	}
}

// TestRetryAfter: the client waits what the server asks, even though its
// own backoff is a millisecond.
func TestRetryAfter(t *testing.T) {
	srv, hits := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write(body)
	})
	start := time.Now()
	if _, err := download(fast(Options{}), srv.URL+"/a.whl"); err != nil || hits.Load() != 2 {
		t.Fatalf("Get = %v after %d requests, want success after 2", err, hits.Load())
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("retried after %v, want about 1s as Retry-After said", d)
	}
}

func TestParseRetryAfter(t *testing.T) {
	c := New(Options{})
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"3", 3 * time.Second}, {"0", 0}, {"-5", 0}, {"soon", 0},
		{"86400", DefaultMaxRetryAfter},
		{now.Add(10 * time.Second).Format(http.TimeFormat), 10 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
	} {
		if got := c.retryAfter(tc.in, now); got != tc.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	c := New(Options{BaseDelay: 100 * time.Millisecond})
	for _, tc := range []struct {
		attempt  int
		after    time.Duration
		min, max time.Duration
	}{
		{1, 0, 50 * time.Millisecond, 100 * time.Millisecond},
		{4, 0, 400 * time.Millisecond, 800 * time.Millisecond},
		{40, 0, DefaultMaxDelay / 2, DefaultMaxDelay},
		{1, 5 * time.Second, 5 * time.Second, 5 * time.Second},
	} {
		for range 20 {
			if got := c.backoff(tc.attempt, tc.after); got < tc.min || got > tc.max {
				t.Errorf("backoff(%d, %v) = %v, want in [%v, %v]", tc.attempt, tc.after, got, tc.min, tc.max)
				break
			}
		}
	}
}

func TestRedirectRefused(t *testing.T) {
	for _, to := range []string{"http://example.com/a.whl", "file:///etc/passwd"} {
		srv, hits := server(t, func(w http.ResponseWriter, r *http.Request, n int) { http.Redirect(w, r, to, http.StatusFound) })
		_, err := download(fast(Options{}), srv.URL+"/a.whl")
		var re *RedirectError
		if !errors.As(err, &re) || hits.Load() != 1 {
			t.Errorf("Get redirected to %s = %v after %d requests, want a *RedirectError after 1", to, err, hits.Load())
		}
	}
}

func TestFileURL(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.whl")
	if err := os.WriteFile(p, body, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := download(New(Options{}), "file://"+p); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("Get(file URL) = %d bytes, %v; want the file", len(got), err)
	}
	if err := os.WriteFile(p, body[:10], 0o644); err != nil {
		t.Fatal(err)
	}
	var se *SizeError
	var he *Error
	if _, err := download(New(Options{}), "file://"+p); !errors.As(err, &se) || !errors.As(err, &he) || he.Attempts != 1 {
		t.Fatalf("Get(short file) = %v, want a *SizeError after one attempt", err)
	}
}

func TestParallel(t *testing.T) {
	const limit, calls = 2, 8
	var cur, peak atomic.Int32
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		c := cur.Add(1)
		defer cur.Add(-1)
		for p := peak.Load(); c > p && !peak.CompareAndSwap(p, c); p = peak.Load() {
		}
		time.Sleep(20 * time.Millisecond)
		w.Write(body)
	})
	c := fast(Options{Parallel: limit})
	done := make(chan error)
	for range calls {
		go func() { _, err := download(c, srv.URL+"/a.whl"); done <- err }()
	}
	for range calls {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if p := peak.Load(); p > limit {
		t.Errorf("%d requests were in flight at once, want at most %d", p, limit)
	}
}

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"https://files.pythonhosted.org/a.whl", ""},
		{"http://127.0.0.1:8080/a.whl", ""},
		{"http://[::1]/a.whl", ""},
		{"http://localhost/a.whl", ""},
		{"file:///var/cache/a.whl", ""},
		{"http://pypi.org/a.whl", "is plain http"},
		{"http://127.0.0.1.example.com/a.whl", "is plain http"},
		{"https://u:secret@example.org/a.whl", `"https://u:xxxxx@example.org/a.whl" carries credentials`},
		{"https:///a.whl", "has no host"},
		{"file:a.whl", "not a local file URL"},
		{"ftp://example.org/a.whl", "is not an https URL"},
		{"", "is not a URL"},
	} {
		_, err := CheckURL(tc.url)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckURL(%q) = %v, want %q", tc.url, err, tc.want)
		}
	}
}
