package standalone

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// uvDownload is one value of uv's download metadata
// (crates/uv-python/download-metadata.json, the format
// UV_PYTHON_DOWNLOADS_JSON_URL points at), with the keys read here.
// "glibc" is not uv's: a list may add it where a build needs more than
// DefaultGlibc.
type uvDownload struct {
	Name string `json:"name"`
	Arch struct {
		Family  string  `json:"family"`
		Variant *string `json:"variant"`
	} `json:"arch"`
	OS         string  `json:"os"`
	Libc       string  `json:"libc"`
	Major      int     `json:"major"`
	Minor      int     `json:"minor"`
	Patch      int     `json:"patch"`
	Prerelease string  `json:"prerelease"`
	URL        string  `json:"url"`
	SHA256     *string `json:"sha256"`
	Variant    *string `json:"variant"`
	Build      string  `json:"build"`
	Glibc      string  `json:"glibc"`
}

var (
	releaseInURL = regexp.MustCompile(`/download/([0-9A-Za-z][0-9A-Za-z._-]*)/[^/]+$`)
	sha256Hex    = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ParseDownloads reads a download list in uv's format, named name in
// errors, and returns its default (not free-threaded, not debug) CPython
// release builds for x86_64 and aarch64 linux-gnu; the rest of the list
// is ignored. An entry of that kind without a sha256 is refused, since
// nothing could check what it names.
func ParseDownloads(data []byte, name string) ([]Download, error) {
	var raw map[string]uvDownload
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("read %s: %w (want uv's download metadata: a JSON object of \"cpython-3.13.5-linux-x86_64-gnu\": {\"url\": ..., \"sha256\": ...})", name, err)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []Download
	for _, k := range keys {
		e := raw[k]
		if e.Name != "cpython" || e.OS != "linux" || e.Libc != "gnu" || e.Prerelease != "" || e.Major != 3 ||
			e.Variant != nil && *e.Variant != "" || e.Arch.Variant != nil && *e.Arch.Variant != "" ||
			(e.Arch.Family != "x86_64" && e.Arch.Family != "aarch64") {
			continue
		}
		if e.SHA256 == nil || !sha256Hex.MatchString(*e.SHA256) {
			return nil, fmt.Errorf("%s: %q: sha256 is missing or not 64 lowercase hex digits; an unchecked interpreter is not locked (give its sha256)", name, k)
		}
		if _, err := url.Parse(e.URL); err != nil || e.URL == "" {
			return nil, fmt.Errorf("%s: %q: url %q is not a URL", name, k, e.URL)
		}
		release := e.Build
		if release == "" {
			if m := releaseInURL.FindStringSubmatch(e.URL); m != nil {
				release = m[1]
			}
		}
		if release == "" {
			return nil, fmt.Errorf("%s: %q: names no release (want \"build\": \"20260814\", or a URL ending in /download/<release>/<file>)", name, k)
		}
		glibc := e.Glibc
		if glibc == "" {
			glibc = DefaultGlibc
		}
		out = append(out, Download{
			Version: fmt.Sprintf("%d.%d.%d", e.Major, e.Minor, e.Patch), Release: release, Arch: e.Arch.Family,
			URL: resolveURL(e.URL), SHA256: *e.SHA256, Glibc: glibc,
		})
	}
	return out, nil
}

// resolveURL keeps a URL as given, but turns an absolute local path into
// a file URL.
func resolveURL(s string) string {
	if strings.HasPrefix(s, "/") {
		return (&url.URL{Scheme: "file", Path: s}).String()
	}
	return s
}
