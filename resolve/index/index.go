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
	"github.com/bitpoll-install/bitpoll-install/httpretry"

	"github.com/bitpoll-install/bitpoll-install/safearchive"

	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Defaults used by New for zero Options fields.
const (
	DefaultIndexURL   = "https://pypi.org/simple/"
	DefaultJSONAPIURL = "https://pypi.org/pypi/"
	DefaultRetries    = httpretry.DefaultRetries
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
	http       *httpretry.Client
	cacheDir   string
	unpack     safearchive.Limits
}

// New returns a Client for o.
func New(o Options) *Client {
	return newClient(o, 0)
}

// newClient is New with the first backoff step; tests shorten it.
func newClient(o Options, baseDelay time.Duration) *Client {
	parallel := o.Parallel
	if parallel <= 0 {
		parallel = DefaultParallel
	}
	ua := o.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	return &Client{
		indexURL:   withSlash(o.IndexURL, DefaultIndexURL),
		jsonAPIURL: withSlash(o.JSONAPIURL, DefaultJSONAPIURL),
		http: httpretry.New(httpretry.Options{
			HTTP: o.HTTPClient, Retries: o.Retries, BaseDelay: baseDelay, UserAgent: ua, Parallel: parallel,
		}),
		cacheDir: o.CacheDir,
		unpack:   o.Unpack,
	}
}

// withSlash returns u, or def when u is empty, ending in exactly one slash
// so that names can be appended.
func withSlash(u, def string) string {
	if u == "" {
		u = def
	}
	return strings.TrimRight(u, "/") + "/"
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
