package pep508

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bitpoll-install/bitpoll-install/pyspec/pep440"
)

// Requirement is one parsed dependency specifier.
type Requirement struct {
	Name       string   // PEP 503 normal form
	Extras     []string // PEP 685 normal form, sorted, without duplicates
	Specifiers pep440.Specifiers
	URL        string  // for "name @ url"; then Specifiers is empty
	Marker     *Marker // nil when absent
}

// ParseRequirement parses a PEP 508 dependency specifier such as
// `Django[argon2] (>=4.2,<5) ; python_version >= "3.10"` or
// `pkg @ https://example.org/pkg-1.0.tar.gz ; os_name == "posix"`.
func ParseRequirement(s string) (Requirement, error) {
	r, err := parseRequirement(strings.Trim(s, " \t"))
	if err != nil {
		return Requirement{}, fmt.Errorf("invalid requirement %q: %w", s, err)
	}
	return r, nil
}

func parseRequirement(s string) (Requirement, error) {
	var r Requirement
	end := strings.IndexFunc(s, func(c rune) bool {
		return !(c < 0x80 && isAlnum(byte(c))) && c != '-' && c != '_' && c != '.'
	})
	if end < 0 {
		end = len(s)
	}
	name, rest := s[:end], strings.TrimLeft(s[end:], " \t")
	if !validName(name) {
		if name == "" {
			return r, fmt.Errorf("want a package name at the start")
		}
		return r, fmt.Errorf("name %q must start and end with a letter or digit and hold only letters, digits, \"-\", \"_\" and \".\"", name)
	}
	r.Name = NormalizeName(name)

	if strings.HasPrefix(rest, "[") {
		inner, after, ok := strings.Cut(rest[1:], "]")
		if !ok {
			return r, fmt.Errorf("extras %q lack the closing \"]\"", rest)
		}
		extras, err := parseExtras(inner)
		if err != nil {
			return r, err
		}
		r.Extras, rest = extras, strings.TrimLeft(after, " \t")
	}

	var marker string
	hasMarker := false
	if url, ok := strings.CutPrefix(rest, "@"); ok {
		url = strings.TrimLeft(url, " \t")
		end := strings.IndexAny(url, " \t")
		if end < 0 {
			end = len(url)
		}
		if end == 0 {
			return r, fmt.Errorf("want a URL after \"@\"")
		}
		r.URL, rest = url[:end], strings.TrimLeft(url[end:], " \t")
		// The URL runs up to white space, so a marker must follow a blank.
		if rest != "" {
			if marker, hasMarker = strings.CutPrefix(rest, ";"); !hasMarker {
				return r, fmt.Errorf("unexpected %q after the URL, want \" ; marker\" or the end", rest)
			}
		}
	} else {
		var specs string
		if inner, ok := strings.CutPrefix(rest, "("); ok {
			var after string
			if specs, after, ok = strings.Cut(inner, ")"); !ok {
				return r, fmt.Errorf("version specifiers %q lack the closing \")\"", rest)
			}
			if after = strings.TrimLeft(after, " \t"); after != "" {
				if marker, hasMarker = strings.CutPrefix(after, ";"); !hasMarker {
					return r, fmt.Errorf("unexpected %q after the version specifiers, want \";\" or the end", after)
				}
			}
		} else {
			specs, marker, hasMarker = strings.Cut(rest, ";")
		}
		if strings.ContainsAny(specs, "()[]@") {
			return r, fmt.Errorf("version specifiers %q hold one of ()[]@; want a list like >=1.0,<2", specs)
		}
		ss, err := pep440.ParseSpecifiers(specs)
		if err != nil {
			return r, err
		}
		r.Specifiers = ss
	}
	if hasMarker {
		m, err := ParseMarker(marker)
		if err != nil {
			return r, err
		}
		r.Marker = m
	}
	return r, nil
}

func parseExtras(s string) ([]string, error) {
	if strings.Trim(s, " \t") == "" {
		return nil, nil
	}
	var extras []string
	for e := range strings.SplitSeq(s, ",") {
		e = strings.Trim(e, " \t")
		if !validName(e) {
			return nil, fmt.Errorf("extra %q is not a valid name; want letters, digits, \"-\", \"_\" and \".\", comma-separated", e)
		}
		extras = append(extras, NormalizeName(e))
	}
	slices.Sort(extras)
	return slices.Compact(extras), nil
}

// String returns the canonical form, e.g. `django[argon2]<5,>=4.2;
// python_version >= "3.10"` or `pkg @ https://… ; os_name == "posix"`.
func (r Requirement) String() string {
	var b strings.Builder
	b.WriteString(r.Name)
	if len(r.Extras) > 0 {
		b.WriteString("[" + strings.Join(r.Extras, ",") + "]")
	}
	b.WriteString(r.Specifiers.String())
	if r.URL != "" {
		b.WriteString(" @ " + r.URL)
		if r.Marker != nil {
			b.WriteString(" ")
		}
	}
	if r.Marker != nil {
		b.WriteString("; " + r.Marker.String())
	}
	return b.String()
}
