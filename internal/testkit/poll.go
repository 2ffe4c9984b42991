package testkit

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

var csrfInput = regexp.MustCompile(`name="csrfmiddlewaretoken" value="([^"]+)"`)

// FetchPage fetches u and returns its status and body.
func FetchPage(tb testing.TB, c *http.Client, u string) (int, string) {
	tb.Helper()
	resp, err := c.Get(u)
	if err != nil {
		tb.Fatalf("GET %s = %v, want a response", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read %s: %v", u, err)
	}
	return resp.StatusCode, string(body)
}

// CreatePoll creates a universal poll through real Bitpoll's front-page
// form, the way a browser does (cookie, CSRF token, Origin), and reads it
// back from its page.
func CreatePoll(tb testing.TB, base, slug, title string) {
	tb.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		tb.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	status, page := FetchPage(tb, c, base+"/")
	if status != http.StatusOK {
		tb.Fatalf("GET / = %d, want 200", status)
	}
	m := csrfInput.FindStringSubmatch(page)
	if m == nil {
		tb.Fatalf("GET / has no csrfmiddlewaretoken input, want the poll form; page:\n%s", page)
	}
	form := url.Values{
		"csrfmiddlewaretoken": {m[1]},
		"title":               {title},
		"type":                {"universal"},
		"url":                 {slug},
	}
	req, err := http.NewRequest(http.MethodPost, base+"/", strings.NewReader(form.Encode()))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// Django checks Origin against the host for http; Referer only for https.
	req.Header.Set("Origin", base)
	req.Header.Set("Referer", base+"/")
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatalf("POST / (create poll) = %v, want a response", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path == "/" {
		tb.Fatalf("POST / (create poll %q) ended at %s with %d, want a redirect to the poll's choice page; page:\n%s",
			slug, resp.Request.URL, resp.StatusCode, body)
	}
	if !strings.Contains(resp.Request.URL.Path, slug) {
		tb.Errorf("POST / (create poll %q) redirected to %s, want a page of that poll", slug, resp.Request.URL)
	}
	status, page = FetchPage(tb, c, base+"/poll/"+slug+"/")
	if status != http.StatusOK {
		tb.Fatalf("GET /poll/%s/ = %d, want 200", slug, status)
	}
	if !strings.Contains(page, title) {
		tb.Errorf("GET /poll/%s/ does not show the title %q; page:\n%s", slug, title, page)
	}
}
