// Package pep440 parses, normalises and orders Python package versions and
// version specifiers as defined by PEP 440. Environment markers and whole
// requirement lines live in the sibling package pep508.
package pep440

import (
	"fmt"
	"strconv"
	"strings"
)

// Pre-release kinds, in their PEP 440 order.
const (
	preNone = iota
	preAlpha
	preBeta
	preRC
)

var preLabels = [...]string{preAlpha: "a", preBeta: "b", preRC: "rc"}

// Version is a parsed PEP 440 version. The zero value is version "0".
type Version struct {
	epoch   int
	release []int
	preKind int // preNone, preAlpha, preBeta or preRC
	preN    int
	hasPost bool
	post    int
	hasDev  bool
	dev     int
	local   []string // lowercase; numeric parts without leading zeros
}

// Parse parses any PEP 440 spelling of a version ("v1.0-RC.1", "1.0.post",
// "1!2.0+ubuntu-1") into its normal form. Leading and trailing white space is
// ignored.
func Parse(s string) (Version, error) {
	p := parser{s: asciiLower(strings.TrimSpace(s))}
	v, err := p.version()
	if err != nil {
		return Version{}, fmt.Errorf("invalid version %q: %w", s, err)
	}
	return v, nil
}

// MustParse is like Parse but panics on error. It is meant for constants in
// code and tests.
func MustParse(s string) Version {
	v, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return v
}

// asciiLower lowercases ASCII letters only: PEP 440 matching is ASCII
// case-insensitive, and Unicode folding would accept non-ASCII lookalikes
// such as the Kelvin sign.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

// parser reads a lowercased version string. Each optional segment is matched
// greedily and never revisited, the way the possessive regular expression of
// the reference implementation behaves.
type parser struct {
	s   string
	pos int
}

func (p *parser) version() (Version, error) {
	var v Version
	p.skip("v")
	n, ok, err := p.number()
	if err != nil {
		return Version{}, err
	}
	if !ok {
		return Version{}, p.unexpected("a release number such as 1.0")
	}
	if p.skip("!") {
		v.epoch = n
		if n, ok, err = p.number(); err != nil {
			return Version{}, err
		} else if !ok {
			return Version{}, p.unexpected("a release number after the epoch")
		}
	}
	v.release = append(v.release, n)
	for p.peekByte() == '.' && p.peekDigitAt(p.pos+1) {
		p.pos++
		if n, _, err = p.number(); err != nil {
			return Version{}, err
		}
		v.release = append(v.release, n)
	}
	if err := p.pre(&v); err != nil {
		return Version{}, err
	}
	if err := p.post(&v); err != nil {
		return Version{}, err
	}
	if err := p.dev(&v); err != nil {
		return Version{}, err
	}
	if p.skip("+") {
		if err := p.local(&v); err != nil {
			return Version{}, err
		}
	}
	if p.pos != len(p.s) {
		return Version{}, p.unexpected("end of version")
	}
	return v, nil
}

func (p *parser) pre(v *Version) error {
	start := p.pos
	p.separator()
	// Longer spellings come first so "alpha" is not read as "a" + "lpha".
	switch {
	case p.skip("alpha"), p.skip("a"):
		v.preKind = preAlpha
	case p.skip("beta"), p.skip("b"):
		v.preKind = preBeta
	case p.skip("preview"), p.skip("pre"), p.skip("c"), p.skip("rc"):
		v.preKind = preRC
	default:
		p.pos = start
		return nil
	}
	p.separator()
	n, _, err := p.number()
	v.preN = n
	return err
}

func (p *parser) post(v *Version) error {
	start := p.pos
	if p.skip("-") {
		n, ok, err := p.number()
		if err != nil {
			return err
		}
		if ok {
			v.hasPost, v.post = true, n
			return nil
		}
		p.pos = start
	}
	p.separator()
	if !p.skip("post") && !p.skip("rev") && !p.skip("r") {
		p.pos = start
		return nil
	}
	p.separator()
	n, _, err := p.number()
	v.hasPost, v.post = true, n
	return err
}

func (p *parser) dev(v *Version) error {
	start := p.pos
	p.separator()
	if !p.skip("dev") {
		p.pos = start
		return nil
	}
	p.separator()
	n, _, err := p.number()
	v.hasDev, v.dev = true, n
	return err
}

func (p *parser) local(v *Version) error {
	for {
		start := p.pos
		for p.pos < len(p.s) && isAlnum(p.s[p.pos]) {
			p.pos++
		}
		if p.pos == start {
			return p.unexpected("a local version label of letters and digits")
		}
		v.local = append(v.local, normalizeLocalPart(p.s[start:p.pos]))
		if p.pos == len(p.s) || !isSeparator(p.s[p.pos]) {
			return nil
		}
		p.pos++
	}
}

// normalizeLocalPart drops leading zeros from numeric parts, which compare
// as integers.
func normalizeLocalPart(s string) string {
	if !isDigits(s) {
		return s
	}
	t := strings.TrimLeft(s, "0")
	if t == "" {
		return "0"
	}
	return t
}

func (p *parser) skip(lit string) bool {
	if strings.HasPrefix(p.s[p.pos:], lit) {
		p.pos += len(lit)
		return true
	}
	return false
}

func (p *parser) separator() {
	if p.pos < len(p.s) && isSeparator(p.s[p.pos]) {
		p.pos++
	}
}

func (p *parser) peekByte() byte {
	if p.pos < len(p.s) {
		return p.s[p.pos]
	}
	return 0
}

func (p *parser) peekDigitAt(i int) bool {
	return i < len(p.s) && isDigit(p.s[i])
}

// number reads a run of digits; ok is false when there is none.
func (p *parser) number() (n int, ok bool, err error) {
	start := p.pos
	for p.pos < len(p.s) && isDigit(p.s[p.pos]) {
		p.pos++
	}
	if p.pos == start {
		return 0, false, nil
	}
	n, err = strconv.Atoi(p.s[start:p.pos])
	if err != nil {
		return 0, false, fmt.Errorf("number %q is too large (want at most %d)", p.s[start:p.pos], maxInt)
	}
	return n, true, nil
}

const maxInt = int(^uint(0) >> 1)

func (p *parser) unexpected(want string) error {
	if p.pos >= len(p.s) {
		return fmt.Errorf("unexpected end, want %s", want)
	}
	return fmt.Errorf("unexpected %q at offset %d, want %s", p.s[p.pos:], p.pos, want)
}

func isDigit(c byte) bool     { return '0' <= c && c <= '9' }
func isAlnum(c byte) bool     { return isDigit(c) || 'a' <= c && c <= 'z' }
func isSeparator(c byte) bool { return c == '.' || c == '_' || c == '-' }

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

// String returns the normal form, such as "1!2.0rc1.post3.dev4+local.7".
func (v Version) String() string {
	var b strings.Builder
	if v.epoch != 0 {
		b.WriteString(strconv.Itoa(v.epoch))
		b.WriteByte('!')
	}
	b.WriteString(v.publicRelease())
	if v.preKind != preNone {
		b.WriteString(preLabels[v.preKind])
		b.WriteString(strconv.Itoa(v.preN))
	}
	if v.hasPost {
		b.WriteString(".post")
		b.WriteString(strconv.Itoa(v.post))
	}
	if v.hasDev {
		b.WriteString(".dev")
		b.WriteString(strconv.Itoa(v.dev))
	}
	if len(v.local) > 0 {
		b.WriteByte('+')
		b.WriteString(strings.Join(v.local, "."))
	}
	return b.String()
}

func (v Version) publicRelease() string {
	if len(v.release) == 0 {
		return "0"
	}
	parts := make([]string, len(v.release))
	for i, n := range v.release {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ".")
}

// Epoch returns the epoch, 0 when absent.
func (v Version) Epoch() int { return v.epoch }

// Release returns a copy of the release numbers, as written (trailing
// zeros kept).
func (v Version) Release() []int {
	if len(v.release) == 0 {
		return []int{0}
	}
	return append([]int(nil), v.release...)
}

// IsPrerelease reports whether v is a pre-release or a development release.
func (v Version) IsPrerelease() bool { return v.preKind != preNone || v.hasDev }

// IsPostrelease reports whether v has a post-release segment.
func (v Version) IsPostrelease() bool { return v.hasPost }

// Local returns the normalised local label ("ubuntu.1"), or "" when absent.
func (v Version) Local() string { return strings.Join(v.local, ".") }

// Public returns v without its local label.
func (v Version) Public() Version {
	v.local = nil
	return v
}

// Compare returns -1, 0 or +1 as v sorts before, equal to or after w in the
// PEP 440 order. Trailing zeros in the release do not matter (1.0 == 1.0.0).
func (v Version) Compare(w Version) int {
	if c := cmpInt(v.epoch, w.epoch); c != 0 {
		return c
	}
	if c := cmpRelease(v.release, w.release); c != 0 {
		return c
	}
	if c := cmpInt(v.preRank(), w.preRank()); c != 0 {
		return c
	}
	if v.preKind != preNone && w.preKind != preNone {
		if c := cmpInt(v.preN, w.preN); c != 0 {
			return c
		}
	}
	// A missing post segment sorts before any post-release.
	if c := cmpOptional(v.hasPost, v.post, w.hasPost, w.post, -1); c != 0 {
		return c
	}
	// A missing dev segment sorts after any dev release.
	if c := cmpOptional(v.hasDev, v.dev, w.hasDev, w.dev, +1); c != 0 {
		return c
	}
	return cmpLocal(v.local, w.local)
}

// preRank orders the pre-release segment: a dev release of a final version
// (1.0.dev1) sorts before every pre-release of it, and a final or
// post-release after all of them.
func (v Version) preRank() int {
	switch {
	case v.preKind != preNone:
		return v.preKind
	case v.hasDev && !v.hasPost:
		return preNone - 1
	default:
		return preRC + 1
	}
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return +1
	}
	return 0
}

// cmpOptional compares optional numbers; absent sorts as absentSign×∞.
func cmpOptional(hasA bool, a int, hasB bool, b int, absentSign int) int {
	switch {
	case hasA && hasB:
		return cmpInt(a, b)
	case hasA == hasB:
		return 0
	case !hasA:
		return absentSign
	default:
		return -absentSign
	}
}

func cmpRelease(a, b []int) int {
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if c := cmpInt(x, y); c != 0 {
			return c
		}
	}
	return 0
}

// cmpLocal orders local labels: none first, then part by part, where a
// numeric part sorts after an alphanumeric one and a shorter label that is
// a prefix of a longer one sorts first.
func cmpLocal(a, b []string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := cmpLocalPart(a[i], b[i]); c != 0 {
			return c
		}
	}
	return cmpInt(len(a), len(b))
}

func cmpLocalPart(a, b string) int {
	na, nb := isDigits(a), isDigits(b)
	switch {
	case na && nb:
		// Both are free of leading zeros, so length decides first.
		if c := cmpInt(len(a), len(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	case na:
		return +1
	case nb:
		return -1
	}
	return strings.Compare(a, b)
}
