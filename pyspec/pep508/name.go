// Package pep508 parses dependency specifiers ("requests[socks]>=2.0;
// python_version < '3.13'") and evaluates their environment markers, as
// defined by PEP 508 with the name rules of PEP 503 and PEP 685. Versions
// and version specifiers come from the sibling package pep440.
package pep508

import "strings"

// NormalizeName returns the PEP 503 form of a project or extra name:
// lowercase, with every run of "-", "_" and "." replaced by one "-".
func NormalizeName(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	sep := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' || c == '_' || c == '.':
			sep = true
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if sep {
			b.WriteByte('-')
			sep = false
		}
		b.WriteByte(c)
	}
	if sep {
		b.WriteByte('-')
	}
	return b.String()
}

// validName reports whether s is a PEP 508 identifier: ASCII letters and
// digits, with "-", "_" and "." allowed only inside.
func validName(s string) bool {
	if s == "" || !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
