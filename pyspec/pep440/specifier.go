package pep440

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// Specifier is one version clause such as ">=1.0" or "==2.*". Version holds
// the normal form of the operand, with a trailing ".*" for prefix matches;
// for the arbitrary-equality operator "===" it is kept as written.
type Specifier struct {
	Op      string
	Version string
}

// Specifiers is a comma-separated list of clauses that must all hold.
type Specifiers []Specifier

// operators lists the comparison operators, longer spellings first so that
// "===" is not read as "==" followed by "=".
var operators = []string{"===", "~=", "==", "!=", "<=", ">=", "<", ">"}

// ParseSpecifiers parses a comma-separated specifier list such as
// ">=1.0, <2" or "~=1.4.5". The empty string is the empty list, which
// allows every final release. Empty items between commas are skipped.
func ParseSpecifiers(s string) (Specifiers, error) {
	var specs Specifiers
	for item := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		spec, err := ParseSpecifier(item)
		if err != nil {
			return nil, err
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// ParseSpecifier parses a single clause such as ">= 1.0".
func ParseSpecifier(s string) (Specifier, error) {
	spec, err := parseSpecifier(strings.TrimSpace(s))
	if err != nil {
		return Specifier{}, fmt.Errorf("invalid specifier %q: %w", s, err)
	}
	return spec, nil
}

func parseSpecifier(s string) (Specifier, error) {
	op := ""
	for _, o := range operators {
		if strings.HasPrefix(s, o) {
			op = o
			break
		}
	}
	if op == "" {
		return Specifier{}, fmt.Errorf("want an operator (one of %s) before the version", strings.Join(operators, " "))
	}
	raw := strings.TrimSpace(s[len(op):])
	if raw == "" {
		return Specifier{}, fmt.Errorf("want a version after %q", op)
	}
	if op == "===" {
		if i := strings.IndexFunc(raw, func(r rune) bool { return r == ';' || r == ')' || unicode.IsSpace(r) }); i >= 0 {
			return Specifier{}, fmt.Errorf("arbitrary version %q contains %q; it must not hold white space, \";\" or \")\"", raw, raw[i:i+1])
		}
		return Specifier{Op: op, Version: raw}, nil
	}
	if prefix, ok := strings.CutSuffix(raw, ".*"); ok {
		if op != "==" && op != "!=" {
			return Specifier{}, fmt.Errorf("a trailing .* is only allowed with == and !=, not %q", op)
		}
		v, err := parseOperand(prefix)
		if err != nil {
			return Specifier{}, err
		}
		if v.preKind != preNone || v.hasPost || v.hasDev || len(v.local) > 0 {
			return Specifier{}, fmt.Errorf("a trailing .* needs a plain release such as 1.2.*, not %q", prefix)
		}
		return Specifier{Op: op, Version: v.String() + ".*"}, nil
	}
	v, err := parseOperand(raw)
	if err != nil {
		return Specifier{}, err
	}
	if len(v.local) > 0 && op != "==" && op != "!=" {
		return Specifier{}, fmt.Errorf("a local version label is only allowed with == and !=, not %q", op)
	}
	if op == "~=" && len(v.release) < 2 {
		return Specifier{}, fmt.Errorf("~= needs at least two release numbers, as in ~=%s.0", v.String())
	}
	return Specifier{Op: op, Version: v.String()}, nil
}

// parseOperand parses the version of a clause. Unlike a bare version it may
// not be surrounded by white space, which ParseSpecifier has already trimmed.
func parseOperand(s string) (Version, error) {
	if s != strings.TrimSpace(s) {
		return Version{}, fmt.Errorf("version %q has inner white space", s)
	}
	p := parser{s: asciiLower(s)}
	v, err := p.version()
	if err != nil {
		return Version{}, fmt.Errorf("version %q: %w", s, err)
	}
	return v, nil
}

// String returns the clause without spaces, e.g. ">=1.0".
func (s Specifier) String() string { return s.Op + s.Version }

// String returns the canonical list: clauses sorted, duplicates dropped,
// joined by "," without spaces.
func (ss Specifiers) String() string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = s.String()
	}
	slices.Sort(parts)
	return strings.Join(slices.Compact(parts), ",")
}

// AllowsPrereleases reports whether one of the clauses names a pre-release
// (">=2.0b1"), which by PEP 440 lets the list match pre-releases. "!=" and
// prefix matches never do.
func (ss Specifiers) AllowsPrereleases() bool {
	for _, s := range ss {
		if s.Op == "!=" || strings.HasSuffix(s.Version, ".*") {
			continue
		}
		if v, err := Parse(s.Version); err == nil && v.IsPrerelease() {
			return true
		}
	}
	return false
}

// Contains reports whether v satisfies every clause. Pre-releases and dev
// releases match only when pre is true or a clause names a pre-release.
func (ss Specifiers) Contains(v Version, pre bool) bool {
	if v.IsPrerelease() && !pre && !ss.AllowsPrereleases() {
		return false
	}
	for _, s := range ss {
		if !s.matches(v) {
			return false
		}
	}
	return true
}

// matches applies one clause to v, ignoring the pre-release policy. A clause
// that does not parse (built by hand rather than by ParseSpecifier) matches
// nothing.
func (s Specifier) matches(v Version) bool {
	if s.Op == "===" {
		return strings.EqualFold(v.String(), s.Version)
	}
	if prefix, ok := strings.CutSuffix(s.Version, ".*"); ok {
		p, err := Parse(prefix)
		if err != nil {
			return false
		}
		switch s.Op {
		case "==":
			return hasPrefix(v, p)
		case "!=":
			return !hasPrefix(v, p)
		}
		return false
	}
	w, err := Parse(s.Version)
	if err != nil {
		return false
	}
	switch s.Op {
	case "==":
		return equal(v, w)
	case "!=":
		return !equal(v, w)
	case "<=":
		return v.Public().Compare(w) <= 0
	case ">=":
		return v.Public().Compare(w) >= 0
	case "<":
		return lessThan(v, w)
	case ">":
		return greaterThan(v, w)
	case "~=":
		return v.Public().Compare(w) >= 0 && hasPrefix(v, Version{epoch: w.epoch, release: w.release[:len(w.release)-1]})
	}
	return false
}

// equal compares v with w, ignoring v's local label unless w has one.
func equal(v, w Version) bool {
	if len(w.local) == 0 {
		v = v.Public()
	}
	return v.Compare(w) == 0
}

// hasPrefix reports whether v's release, padded with zeros, starts with
// p's release in the same epoch: the meaning of "==p.*".
func hasPrefix(v, p Version) bool {
	if v.epoch != p.epoch {
		return false
	}
	for i, n := range p.release {
		m := 0
		if i < len(v.release) {
			m = v.release[i]
		}
		if m != n {
			return false
		}
	}
	return true
}

// lessThan is "<w": it excludes the pre-releases of w itself unless w is a
// pre-release, so "<2.0" does not admit 2.0a1. Everything from w.dev0 up is
// out.
func lessThan(v, w Version) bool {
	if !w.IsPrerelease() {
		w.hasDev, w.dev = true, 0
	}
	return v.Public().Compare(w) < 0
}

// greaterThan is ">w": unless w is itself a post or dev release it excludes
// w's post-releases and local variants, so ">1.0" does not admit 1.0.post1.
func greaterThan(v, w Version) bool {
	if v.Public().Compare(w) <= 0 {
		return false
	}
	if w.hasDev || w.hasPost {
		return true
	}
	sameFamily := v.epoch == w.epoch && cmpRelease(v.release, w.release) == 0 &&
		v.preKind == w.preKind && (v.preKind == preNone || v.preN == w.preN)
	return !sameFamily
}
