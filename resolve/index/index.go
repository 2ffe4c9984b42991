// Package index is a client for Python package indexes: the PEP 691 JSON
// simple API for file lists, PEP 658 metadata files, wheel and sdist
// downloads when metadata is missing, and the PyPI JSON API for
// vulnerability audits.
//
// It only fetches and verifies. Choosing versions and wheels for targets is
// the job of package resolve; version and marker syntax live in
// pyspec/pep440 and pyspec/pep508.
package index

import (
	"github.com/bitpoll-install/bitpoll-install/safearchive"

	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Defaults used by New for zero Options fields.
const (
	DefaultIndexURL   = "https://pypi.org/simple/"
	DefaultJSONAPIURL = "https://pypi.org/pypi/"
	DefaultRetries    = 4
	DefaultParallel   = 16
	DefaultUserAgent  = "bitpoll-install"
)

// Size limits for what the client reads from an index. A response larger
// than its limit is an error, never silently truncated.
const (
	MaxPageSize      = 64 << 20 // a project page or JSON API document
	MaxMetadataSize  = 16 << 20 // a PEP 658 metadata file or a wheel's METADATA
	MaxWheelSize     = 1 << 30  // a wheel downloaded to read its METADATA
	MaxSdistSize     = 256 << 20
	MaxPyprojectSize = 1 << 20
)

// Backoff bounds. Retry-After above maxRetryAfter is clamped so that a
// misbehaving server cannot stall a lock for hours.
const (
	defaultBaseDelay = 500 * time.Millisecond
	maxBackoff       = 30 * time.Second
	maxRetryAfter    = 2 * time.Minute
)

// mediaTypeJSON is the PEP 691 media type for version 1 of the simple API.
const mediaTypeJSON = "application/vnd.pypi.simple.v1+json"

// ErrNotFound is wrapped by errors for projects or files the index does not
// have (HTTP 404 or 410).
var ErrNotFound = errors.New("not found")

// ErrNoVulnerabilityData is wrapped by Vulnerabilities when the JSON API has
// no document for a release, so the caller can report "could not audit"
// instead of "no known vulnerabilities".
var ErrNoVulnerabilityData = errors.New("no vulnerability data")

// Options configures a Client. Zero fields take the documented defaults.
type Options struct {
	IndexURL   string       // default DefaultIndexURL
	JSONAPIURL string       // default DefaultJSONAPIURL, the PyPI JSON API used for audits
	HTTPClient *http.Client // default: a client with connect, TLS and header timeouts
	// Retries is how many times a request is repeated after a network error,
	// 429 or 5xx, with exponential backoff and jitter, honouring Retry-After.
	// 0 means DefaultRetries; a negative value disables retries.
	Retries  int
	Parallel int // max concurrent requests, default DefaultParallel
	// CacheDir, if set, keeps verified metadata files, named by their
	// content hash, so a second lock does not fetch them again.
	CacheDir  string
	UserAgent string
	// Unpack bounds what an sdist read for its build requirements may
	// unpack to; zero means safearchive's defaults.
	Unpack safearchive.Limits
}

// Client talks to one index. It is safe for concurrent use; at most
// Options.Parallel requests are in flight at once.
type Client struct {
	indexURL   string
	jsonAPIURL string
	http       *http.Client
	retries    int
	sem        chan struct{}
	cacheDir   string
	userAgent  string
	unpack     safearchive.Limits
	baseDelay  time.Duration // first backoff step; tests shorten it
}

// New returns a Client for o.
func New(o Options) *Client {
	c := &Client{
		indexURL:   withSlash(o.IndexURL, DefaultIndexURL),
		jsonAPIURL: withSlash(o.JSONAPIURL, DefaultJSONAPIURL),
		http:       o.HTTPClient,
		retries:    o.Retries,
		cacheDir:   o.CacheDir,
		userAgent:  o.UserAgent,
		unpack:     o.Unpack,
		baseDelay:  defaultBaseDelay,
	}
	if c.http == nil {
		c.http = defaultHTTPClient()
	}
	switch {
	case c.retries == 0:
		c.retries = DefaultRetries
	case c.retries < 0:
		c.retries = 0
	}
	parallel := o.Parallel
	if parallel <= 0 {
		parallel = DefaultParallel
	}
	c.sem = make(chan struct{}, parallel)
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	return c
}

// withSlash returns u, or def when u is empty, ending in exactly one slash
// so that names can be appended.
func withSlash(u, def string) string {
	if u == "" {
		u = def
	}
	return strings.TrimRight(u, "/") + "/"
}

// defaultHTTPClient bounds every phase that can hang before the body starts.
// The whole-request timeout is generous because a large wheel may take
// minutes; the caller's context bounds the rest.
func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 15 * time.Second
	t.ResponseHeaderTimeout = 60 * time.Second
	t.IdleConnTimeout = 90 * time.Second
	t.MaxIdleConnsPerHost = DefaultParallel
	return &http.Client{Transport: t, Timeout: 15 * time.Minute}
}

// namePattern is the PEP 508 project name syntax.
var namePattern = regexp.MustCompile(`^(?i:[a-z0-9]|[a-z0-9][a-z0-9._-]*[a-z0-9])$`)

var separatorRun = regexp.MustCompile(`[-_.]+`)

// Normalize returns the PEP 503 normalized form of a project name: lower
// case, with each run of "-", "_" and "." replaced by one "-".
func Normalize(name string) string {
	return strings.ToLower(separatorRun.ReplaceAllString(name, "-"))
}

// checkName rejects names that are not PEP 508 names before they become
// part of a URL.
func checkName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("invalid project name %q: want letters, digits, '-', '_' or '.', starting and ending with a letter or digit", name)
	}
	return nil
}
