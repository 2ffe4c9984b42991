package index

import (
	"github.com/bitpoll-install/bitpoll-install/httpretry"

	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const emptyPage = `{"meta":{"api-version":"1.1"},"name":"x","files":[]}`

// flaky answers with status for the first n requests, then with an empty
// page.
func flaky(n int32, status int, header http.Header) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) <= n {
			for k, v := range header {
				w.Header()[k] = v
			}
			w.WriteHeader(status)
			return
		}
		w.Header().Set("Content-Type", mediaTypeJSON)
		w.Write([]byte(emptyPage))
	}))
	return srv, &hits
}

func TestRetryThenSuccess(t *testing.T) {
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusTooManyRequests} {
		srv, hits := flaky(2, status, nil)
		_, err := testClient(srv, Options{}).Project(context.Background(), "x")
		srv.Close()
		if err != nil || hits.Load() != 3 {
			t.Errorf("Project after two %d answers: error = %v after %d requests, want success after 3", status, err, hits.Load())
		}
	}
}

func TestRetryGivesUp(t *testing.T) {
	srv, hits := flaky(100, http.StatusServiceUnavailable, nil)
	defer srv.Close()
	_, err := testClient(srv, Options{Retries: 2}).Project(context.Background(), "x")
	var se *httpretry.StatusError
	var he *httpretry.Error
	if !errors.As(err, &se) || !errors.As(err, &he) || he.Attempts != 3 || se.Code != 503 {
		t.Fatalf("Project error = %v, want a StatusError for 503 after 3 attempts", err)
	}
	want := "fetch " + srv.URL + "/simple/x/: the server answered 503 Service Unavailable (gave up after 3 attempts): the index is failing; retry later or use --index-url"
	if err.Error() != want {
		t.Errorf("Project error = %q, want %q", err, want)
	}
	if hits.Load() != 3 {
		t.Errorf("server saw %d requests, want 3", hits.Load())
	}
}

func TestNoRetryOnClientErrors(t *testing.T) {
	for _, status := range []int{http.StatusForbidden, http.StatusUnauthorized, http.StatusNotFound} {
		srv, hits := flaky(100, status, nil)
		_, err := testClient(srv, Options{}).Project(context.Background(), "x")
		srv.Close()
		if err == nil || hits.Load() != 1 {
			t.Errorf("Project with %d: error = %v after %d requests, want an error after 1", status, err, hits.Load())
		}
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	srv, hits := flaky(1, http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}})
	defer srv.Close()
	start := time.Now()
	_, err := testClient(srv, Options{}).Project(context.Background(), "x")
	if err != nil || hits.Load() != 2 {
		t.Fatalf("Project error = %v after %d requests, want success after 2", err, hits.Load())
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("retried after %v, want about 1s as Retry-After said", d)
	}
}

func TestNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	c := New(Options{IndexURL: url + "/simple/", Retries: -1})
	_, err := c.Project(context.Background(), "x")
	host := strings.TrimPrefix(url, "http://")
	if err == nil || !strings.Contains(err.Error(), `cannot reach "`+host+`"`) || !strings.Contains(err.Error(), "--index-url") {
		t.Errorf("Project on a closed port: error = %v, want one naming %q and suggesting --index-url", err, host)
	}
}

func TestRetryTruncatedBody(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", mediaTypeJSON)
		if hits.Add(1) == 1 {
			w.Header().Set("Content-Length", "1000")
			w.Write([]byte(emptyPage[:10])) // the connection closes early
			return
		}
		w.Write([]byte(emptyPage))
	}))
	defer srv.Close()
	_, err := testClient(srv, Options{}).Project(context.Background(), "x")
	if err != nil || hits.Load() != 2 {
		t.Errorf("Project after a truncated body: error = %v after %d requests, want success after 2", err, hits.Load())
	}
}

func TestParallelLimit(t *testing.T) {
	const limit, calls = 3, 12
	var cur, peak atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		defer cur.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(30 * time.Millisecond)
		w.Header().Set("Content-Type", mediaTypeJSON)
		w.Write([]byte(emptyPage))
	}))
	defer srv.Close()
	c := testClient(srv, Options{Parallel: limit})
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for range calls {
		wg.Go(func() {
			_, err := c.Project(context.Background(), "x")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if p := peak.Load(); p > limit || p < 2 {
		t.Errorf("peak concurrent requests = %d, want at most %d (and more than 1)", p, limit)
	}
}

func TestContextCancel(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer slow.Close()
	defer close(release)
	failing, _ := flaky(100, http.StatusServiceUnavailable, http.Header{"Retry-After": {"60"}})
	defer failing.Close()

	for name, srv := range map[string]*httptest.Server{"during request": slow, "during backoff": failing} {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		start := time.Now()
		_, err := testClient(srv, Options{}).Project(ctx, "x")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: Project error = %v, want context.DeadlineExceeded", name, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: Project returned after %v, want promptly after cancellation", name, d)
		}
	}
}
