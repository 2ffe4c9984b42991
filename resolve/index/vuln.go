package index

import (
	"github.com/bitpoll-install/bitpoll-install/httpretry"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Vuln is one advisory from the PyPI JSON API (sourced from OSV).
type Vuln struct {
	ID        string
	Aliases   []string // e.g. CVE and GHSA ids
	Summary   string
	Details   string
	Link      string
	FixedIn   []string // versions that fix it
	Withdrawn string   // when set, the advisory was withdrawn at that time
}

type vulnJSON struct {
	Vulnerabilities *[]struct {
		ID        string   `json:"id"`
		Aliases   []string `json:"aliases"`
		Summary   *string  `json:"summary"`
		Details   *string  `json:"details"`
		Link      *string  `json:"link"`
		FixedIn   []string `json:"fixed_in"`
		Withdrawn *string  `json:"withdrawn"`
	} `json:"vulnerabilities"`
}

// Vulnerabilities returns the known advisories for one release from
// <JSONAPIURL><name>/<version>/json. When the API has no document for the
// release, or the document has no vulnerabilities field, the error wraps
// ErrNoVulnerabilityData: the release could not be audited, which is not
// the same as having no advisories.
func (c *Client) Vulnerabilities(ctx context.Context, name, version string) ([]Vuln, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if version == "" || strings.ContainsAny(version, "/?# ") {
		return nil, fmt.Errorf("invalid version %q: want a PEP 440 version", version)
	}
	docURL := c.jsonAPIURL + Normalize(name) + "/" + url.PathEscape(version) + "/json"
	var doc vulnJSON
	err := c.get(ctx, docURL, "application/json", func(r *httpretry.Response) error {
		data, err := readAll(r.Body, MaxPageSize)
		if err != nil {
			return fmt.Errorf("fetch %s: %w", docURL, err)
		}
		doc = vulnJSON{}
		if err := json.Unmarshal(data, &doc); err != nil {
			return fmt.Errorf("parse %s: %w", docURL, err)
		}
		return nil
	})
	if errors.Is(err, errStatusNotFound) {
		return nil, fmt.Errorf("audit %s %s: %s answered 404, so the release cannot be audited: %w", name, version, docURL, ErrNoVulnerabilityData)
	}
	if err != nil {
		return nil, fmt.Errorf("audit %s %s: %w", name, version, err)
	}
	if doc.Vulnerabilities == nil {
		return nil, fmt.Errorf("audit %s %s: %s has no vulnerabilities field: %w", name, version, docURL, ErrNoVulnerabilityData)
	}
	vs := make([]Vuln, 0, len(*doc.Vulnerabilities))
	for _, v := range *doc.Vulnerabilities {
		if v.ID == "" {
			return nil, fmt.Errorf("audit %s %s: %s lists a vulnerability without an id", name, version, docURL)
		}
		vs = append(vs, Vuln{
			ID: v.ID, Aliases: v.Aliases, Summary: deref(v.Summary), Details: deref(v.Details),
			Link: deref(v.Link), FixedIn: v.FixedIn, Withdrawn: deref(v.Withdrawn),
		})
	}
	return vs, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
