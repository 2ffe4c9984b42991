package lockfile

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/fetch"
)

// TestURLsAgreeWithFetcher puts each URL of a table into a valid lock as
// a wheel's URL and hands the same URL to the wheel fetcher: the lock's
// check passes it exactly when the fetcher takes it, loopback http
// included. The fetcher runs with a cancelled context, so a URL it takes
// fails only for the cancel and nothing is downloaded.
func TestURLsAgreeWithFetcher(t *testing.T) {
	const old = "https://files.pythonhosted.org/packages/aa/bb/django-6.0.5-py3-none-any.whl"
	valid := readArchive(t, "testdata/parse/valid.txtar").files["bitpoll.lock"]
	if !strings.Contains(valid, `url = "`+old+`"`) {
		t.Fatalf("testdata/parse/valid.txtar no longer has the wheel URL %s", old)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://files.pythonhosted.org/packages/a.whl", true},
		{"http://127.0.0.1:8080/a.whl", true},
		{"http://127.1.2.3/a.whl", true},
		{"http://localhost/a.whl", true},
		{"http://[::1]:80/a.whl", true},
		{"file:///var/cache/a.whl", true},
		{"file://localhost/var/cache/a.whl", true},
		{"http://files.pythonhosted.org/a.whl", false},
		{"http://127.0.0.1.example.com/a.whl", false},
		{"http://10.0.0.1/a.whl", false},
		{"https:///a.whl", false},
		{"https://user:secret@example.org/a.whl", false},
		{"file://host/a.whl", false},
		{"file:a.whl", false},
		{"ftp://example.com/a.whl", false},
		{"/var/cache/a.whl", false},
		{"https://[::1", false},
		{"https://example.org/a b.whl", false},
	} {
		_, lockErr := Parse([]byte(strings.Replace(valid, old, tc.url, 1)), "bitpoll.lock")
		_, fetchErr := (&fetch.Downloader{CacheDir: t.TempDir()}).Fetch(ctx, []fetch.Artifact{{
			Name: "a.whl", URL: tc.url, Size: 1, SHA256: strings.Repeat("0", 64),
		}})
		fetched := errors.Is(fetchErr, context.Canceled)
		if lockErr == nil != tc.ok || fetched != tc.ok {
			t.Errorf("URL %q: lock check error %v, fetcher error %v; want both to accept it: %v", tc.url, lockErr, fetchErr, tc.ok)
		}
	}
}
