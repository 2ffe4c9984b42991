package index

import (
	"github.com/bitpoll-install/bitpoll-install/httpretry"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// File is one distribution file listed on a project page.
type File struct {
	Filename       string
	URL            string // absolute, without fragment
	SHA256         string // lower-case hex
	RequiresPython string
	Size           int64 // 0 when the index does not say (PEP 700)
	UploadTime     time.Time
	Yanked         bool
	MetadataSHA256 string // "" when the index has no PEP 658 metadata for it, or no hash for it
	HasMetadata    bool
}

// Project is a project page: every file the index has for a name.
type Project struct {
	Name  string // as the index spells it
	Files []File
}

// pageJSON is the PEP 691 project page, with PEP 658/714/700/592 fields.
type pageJSON struct {
	Meta struct {
		APIVersion string `json:"api-version"`
	} `json:"meta"`
	Name  string     `json:"name"`
	Files []fileJSON `json:"files"`
}

type fileJSON struct {
	Filename       string            `json:"filename"`
	URL            string            `json:"url"`
	Hashes         map[string]string `json:"hashes"`
	RequiresPython *string           `json:"requires-python"`
	Size           *int64            `json:"size"`
	UploadTime     *string           `json:"upload-time"`
	Yanked         json.RawMessage   `json:"yanked"`
	CoreMetadata   json.RawMessage   `json:"core-metadata"`
	// The PEP 658 spelling, still sent by older indexes (PEP 714).
	DistInfoMetadata json.RawMessage `json:"data-dist-info-metadata"`
}

var sha256Pattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Project fetches the PEP 691 JSON page for name. A project the index does
// not have gives an error wrapping ErrNotFound.
func (c *Client) Project(ctx context.Context, name string) (*Project, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	pageURL := c.indexURL + Normalize(name) + "/"
	var p *Project
	err := c.get(ctx, pageURL, mediaTypeJSON, func(r *httpretry.Response) error {
		if t, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); t != mediaTypeJSON && t != "application/json" {
			return fmt.Errorf("fetch %s: the index answered with %q, not %s: use an index that serves the PEP 691 JSON simple API", pageURL, r.Header.Get("Content-Type"), mediaTypeJSON)
		}
		data, err := readAll(r.Body, MaxPageSize)
		if err != nil {
			return fmt.Errorf("fetch %s: %w", pageURL, err)
		}
		p, err = parsePage(data, r.URL)
		if err != nil {
			return fmt.Errorf("parse %s: %w", pageURL, err)
		}
		return nil
	})
	if errors.Is(err, errStatusNotFound) {
		return nil, &notFoundError{name: name, index: c.indexURL}
	}
	if err != nil {
		return nil, err
	}
	if Normalize(p.Name) != Normalize(name) {
		return nil, fmt.Errorf("parse %s: page is for project %q, want %q: the index is inconsistent", pageURL, p.Name, name)
	}
	return p, nil
}

type notFoundError struct{ name, index string }

func (e *notFoundError) Error() string {
	return fmt.Sprintf("no project %q on %s: check the name", e.name, e.index)
}

func (e *notFoundError) Unwrap() error { return ErrNotFound }

// parsePage decodes and validates a PEP 691 page fetched from base.
func parsePage(data []byte, base *url.URL) (*Project, error) {
	var pj pageJSON
	if err := json.Unmarshal(data, &pj); err != nil {
		return nil, err
	}
	if major, _, _ := strings.Cut(pj.Meta.APIVersion, "."); major != "1" {
		return nil, fmt.Errorf("unsupported api-version %q: want 1.x (PEP 691)", pj.Meta.APIVersion)
	}
	p := &Project{Name: pj.Name, Files: make([]File, 0, len(pj.Files))}
	for _, fj := range pj.Files {
		f, err := convertFile(fj, base)
		if err != nil {
			return nil, err
		}
		p.Files = append(p.Files, f)
	}
	return p, nil
}

func convertFile(fj fileJSON, base *url.URL) (File, error) {
	f := File{Filename: fj.Filename}
	if fj.Filename == "" || strings.ContainsAny(fj.Filename, `/\`) {
		return f, fmt.Errorf("file with url %q has filename %q: want a plain file name", fj.URL, fj.Filename)
	}
	ref, err := url.Parse(fj.URL)
	if err != nil || fj.URL == "" {
		return f, fmt.Errorf("file %q has url %q: want an absolute or relative URL", fj.Filename, fj.URL)
	}
	abs := base.ResolveReference(ref)
	abs.Fragment, abs.RawFragment = "", ""
	if abs.Scheme != "https" && abs.Scheme != "http" {
		return f, fmt.Errorf("file %q has url %q: want an http or https URL", fj.Filename, abs)
	}
	f.URL = abs.String()

	f.SHA256 = strings.ToLower(fj.Hashes["sha256"])
	if !sha256Pattern.MatchString(f.SHA256) {
		return f, fmt.Errorf("file %q has sha256 %q: want 64 hex digits; the index must publish sha256 hashes", fj.Filename, fj.Hashes["sha256"])
	}
	if fj.RequiresPython != nil {
		f.RequiresPython = strings.TrimSpace(*fj.RequiresPython)
	}
	if fj.Size != nil {
		if *fj.Size < 0 {
			return f, fmt.Errorf("file %q has size %d: want a non-negative number", fj.Filename, *fj.Size)
		}
		f.Size = *fj.Size
	}
	if fj.UploadTime != nil {
		if f.UploadTime, err = time.Parse(time.RFC3339Nano, *fj.UploadTime); err != nil {
			return f, fmt.Errorf("file %q has upload-time %q: want an ISO 8601 UTC time (PEP 700)", fj.Filename, *fj.UploadTime)
		}
	}
	if f.Yanked, err = parseYanked(fj.Yanked); err != nil {
		return f, fmt.Errorf("file %q: %w", fj.Filename, err)
	}
	meta := fj.CoreMetadata
	if len(meta) == 0 {
		meta = fj.DistInfoMetadata
	}
	if f.HasMetadata, f.MetadataSHA256, err = parseCoreMetadata(meta); err != nil {
		return f, fmt.Errorf("file %q: %w", fj.Filename, err)
	}
	return f, nil
}

// parseYanked reads PEP 592's yanked: false, true, or a reason string
// (which means yanked).
func parseYanked(raw json.RawMessage) (bool, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return false, nil
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b, nil
	}
	var reason string
	if json.Unmarshal(raw, &reason) == nil {
		return true, nil
	}
	return false, fmt.Errorf("yanked is %s: want a boolean or a reason string (PEP 592)", raw)
}

// parseCoreMetadata reads PEP 691/714 core-metadata: false, true, or a
// hashes object. True without a sha256 means the file exists but cannot be
// verified.
func parseCoreMetadata(raw json.RawMessage) (has bool, sha string, err error) {
	if len(raw) == 0 || string(raw) == "null" {
		return false, "", nil
	}
	if json.Unmarshal(raw, &has) == nil {
		return has, "", nil
	}
	var hashes map[string]string
	if json.Unmarshal(raw, &hashes) != nil {
		return false, "", fmt.Errorf("core-metadata is %s: want a boolean or a hashes object (PEP 714)", raw)
	}
	sha, ok := hashes["sha256"]
	if !ok {
		return true, "", nil
	}
	sha = strings.ToLower(sha)
	if !sha256Pattern.MatchString(sha) {
		return false, "", fmt.Errorf("core-metadata sha256 is %q: want 64 hex digits", hashes["sha256"])
	}
	return true, sha, nil
}
