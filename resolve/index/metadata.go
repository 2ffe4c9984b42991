package index

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Metadata holds the core metadata fields a resolver needs.
type Metadata struct {
	Name           string
	Version        string
	RequiresPython string
	RequiresDist   []string // in file order, as written
	ProvidesExtra  []string
}

// ParseMetadata parses a core metadata file (METADATA, PKG-INFO or a PEP 658
// .metadata file): RFC 822-style headers, where a line starting with a space
// or tab continues the previous value and a blank line ends the headers. The
// body after it is the description and is not read.
func ParseMetadata(data []byte) (*Metadata, error) {
	var (
		m         Metadata
		key, val  string
		haveField bool
		seen      = map[string]bool{}
	)
	flush := func() error {
		if !haveField {
			return nil
		}
		haveField = false
		val = strings.TrimSpace(val)
		switch strings.ToLower(key) {
		case "name", "version", "requires-python":
			lk := strings.ToLower(key)
			if seen[lk] {
				return fmt.Errorf("parse metadata: field %q appears twice, want it once", key)
			}
			seen[lk] = true
			switch lk {
			case "name":
				m.Name = val
			case "version":
				m.Version = val
			default:
				m.RequiresPython = val
			}
		case "requires-dist":
			m.RequiresDist = append(m.RequiresDist, val)
		case "provides-extra":
			m.ProvidesExtra = append(m.ProvidesExtra, val)
		}
		return nil
	}

	rest := data
	for n := 1; len(rest) > 0; n++ {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break // the description follows, in any encoding; it is not read
		}
		if !utf8.Valid(line) {
			return nil, fmt.Errorf("parse metadata: line %d: %q is not valid UTF-8", n, truncate(line))
		}
		if line[0] == ' ' || line[0] == '\t' {
			if !haveField {
				return nil, fmt.Errorf("parse metadata: line %d: continuation %q without a field before it", n, truncate(line))
			}
			val += " " + strings.TrimSpace(string(line))
			continue
		}
		if err := flush(); err != nil {
			return nil, err
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok || !validFieldName(k) {
			return nil, fmt.Errorf("parse metadata: line %d: %q is not a header, want \"Field: value\"", n, truncate(line))
		}
		key, val, haveField = string(k), string(v), true
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if m.Name == "" || m.Version == "" {
		return nil, fmt.Errorf("parse metadata: name %q, version %q: want both fields set", m.Name, m.Version)
	}
	if err := checkName(m.Name); err != nil {
		return nil, fmt.Errorf("parse metadata: %w", err)
	}
	return &m, nil
}

// validFieldName accepts RFC 5322 field names: printable ASCII without
// spaces or colons.
func validFieldName(k []byte) bool {
	if len(k) == 0 {
		return false
	}
	for _, c := range k {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// truncate keeps error messages short when a file is garbage.
func truncate(b []byte) string {
	const n = 80
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "..."
}
