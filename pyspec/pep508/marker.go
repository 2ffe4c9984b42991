package pep508

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bitpoll-install/bitpoll-install/pyspec/pep440"
)

// Marker is a parsed environment marker such as
// `python_version < "3.13" and extra == "css"`. A nil *Marker is the empty
// marker, which always holds.
type Marker struct {
	op    string    // "and" or "or" for a group; "" for a comparison
	terms []*Marker // operands of a group: two or more, none a group of the same op

	left, right operand
	cmp         string // "==", "<", "in", "not in", …
}

// operand is one side of a comparison: a variable or a quoted literal.
type operand struct {
	variable string // canonical variable name; "" for a literal
	value    string
}

// variables maps every accepted spelling of a marker variable to its
// canonical name.
var variables = map[string]string{
	"python_version":                 "python_version",
	"python_full_version":            "python_full_version",
	"os_name":                        "os_name",
	"os.name":                        "os_name",
	"sys_platform":                   "sys_platform",
	"sys.platform":                   "sys_platform",
	"platform_release":               "platform_release",
	"platform_system":                "platform_system",
	"platform_version":               "platform_version",
	"platform.version":               "platform_version",
	"platform_machine":               "platform_machine",
	"platform.machine":               "platform_machine",
	"platform_python_implementation": "platform_python_implementation",
	"platform.python_implementation": "platform_python_implementation",
	"python_implementation":          "platform_python_implementation",
	"implementation_name":            "implementation_name",
	"implementation_version":         "implementation_version",
	"extra":                          "extra",
	"extras":                         "extras",
	"dependency_groups":              "dependency_groups",
}

// maxMarkerDepth bounds parenthesis nesting, as CPython bounds its own.
const maxMarkerDepth = 100

// ParseMarker parses a PEP 508 marker expression. Unknown variables and
// comparisons without exactly one variable are errors.
func ParseMarker(s string) (*Marker, error) {
	p := markerParser{s: s}
	m, err := p.or()
	if err == nil {
		p.space()
		if p.pos != len(p.s) {
			err = p.unexpected(`"and", "or" or the end of the marker`)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("invalid marker %q: %w", s, err)
	}
	return m, nil
}

type markerParser struct {
	s     string
	pos   int
	depth int
}

func (p *markerParser) or() (*Marker, error) {
	return p.chain("or", p.and)
}

func (p *markerParser) and() (*Marker, error) {
	return p.chain("and", p.atom)
}

// chain parses operands joined by the keyword op; "and" binds tighter than
// "or" because or() chains and() results.
func (p *markerParser) chain(op string, operand func() (*Marker, error)) (*Marker, error) {
	var terms []*Marker
	for {
		m, err := operand()
		if err != nil {
			return nil, err
		}
		terms = append(terms, m)
		p.space()
		if !p.keyword(op) {
			return group(op, terms), nil
		}
	}
}

func (p *markerParser) atom() (*Marker, error) {
	p.space()
	if p.pos < len(p.s) && p.s[p.pos] == '(' {
		if p.depth >= maxMarkerDepth {
			return nil, fmt.Errorf("parentheses nested deeper than %d levels at offset %d", maxMarkerDepth, p.pos)
		}
		p.pos++
		p.depth++
		m, err := p.or()
		if err != nil {
			return nil, err
		}
		p.space()
		if p.pos >= len(p.s) || p.s[p.pos] != ')' {
			return nil, p.unexpected(`")"`)
		}
		p.pos++
		p.depth--
		return m, nil
	}
	return p.comparison()
}

func (p *markerParser) comparison() (*Marker, error) {
	start := p.pos
	left, err := p.operand()
	if err != nil {
		return nil, err
	}
	p.space()
	cmp, err := p.operator()
	if err != nil {
		return nil, err
	}
	p.space()
	right, err := p.operand()
	if err != nil {
		return nil, err
	}
	text := p.s[start:p.pos]
	switch {
	case left.variable == "" && right.variable == "":
		return nil, fmt.Errorf("%q compares two quoted strings; one side must be a marker variable", text)
	case left.variable != "" && right.variable != "":
		return nil, fmt.Errorf("%q compares two variables; one side must be a quoted string", text)
	case isSetVariable(left.variable) || (isSetVariable(right.variable) && cmp != "in" && cmp != "not in"):
		return nil, fmt.Errorf("%q must compare a set variable with \"in\" or \"not in\", as in '\"name\" in extras'", text)
	}
	// PEP 685: extra names compare in their normal form.
	if left.variable == "extra" {
		right.value = NormalizeName(right.value)
	}
	if right.variable == "extra" || isSetVariable(right.variable) {
		left.value = NormalizeName(left.value)
	}
	return &Marker{left: left, cmp: cmp, right: right}, nil
}

func isSetVariable(name string) bool { return name == "extras" || name == "dependency_groups" }

func (p *markerParser) operand() (operand, error) {
	if p.pos >= len(p.s) {
		return operand{}, p.unexpected("a marker variable or a quoted string")
	}
	if q := p.s[p.pos]; q == '"' || q == '\'' {
		end := strings.IndexByte(p.s[p.pos+1:], q)
		if end < 0 {
			return operand{}, fmt.Errorf("string at offset %d lacks its closing %c", p.pos, q)
		}
		value := p.s[p.pos+1 : p.pos+1+end]
		p.pos += end + 2
		return operand{value: value}, nil
	}
	start := p.pos
	for p.pos < len(p.s) && (isWordByte(p.s[p.pos]) || p.s[p.pos] == '.') {
		p.pos++
	}
	name := p.s[start:p.pos]
	if name == "" {
		return operand{}, p.unexpected("a marker variable or a quoted string")
	}
	canonical, ok := variables[name]
	if !ok {
		return operand{}, fmt.Errorf("unknown marker variable %q at offset %d (want one such as python_version, sys_platform, platform_machine or extra)", name, start)
	}
	return operand{variable: canonical}, nil
}

// comparisons lists the marker operators, longer spellings first.
var comparisons = []string{"===", "==", "~=", "!=", "<=", ">=", "<", ">"}

func (p *markerParser) operator() (string, error) {
	if p.keyword("in") {
		return "in", nil
	}
	if p.keyword("not") {
		if p.space() && p.keyword("in") {
			return "not in", nil
		}
		return "", p.unexpected(`"in" after "not "`)
	}
	for _, op := range comparisons {
		if strings.HasPrefix(p.s[p.pos:], op) {
			p.pos += len(op)
			return op, nil
		}
	}
	return "", p.unexpected(`a comparison operator (one of === == ~= != <= >= < > in, not in)`)
}

// keyword consumes word if it stands at the current position as a whole
// word.
func (p *markerParser) keyword(word string) bool {
	rest := p.s[p.pos:]
	if !strings.HasPrefix(rest, word) || len(rest) > len(word) && isWordByte(rest[len(word)]) {
		return false
	}
	p.pos += len(word)
	return true
}

// space skips blanks and reports whether there were any.
func (p *markerParser) space() bool {
	start := p.pos
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
	return p.pos > start
}

func (p *markerParser) unexpected(want string) error {
	if p.pos >= len(p.s) {
		return fmt.Errorf("unexpected end, want %s", want)
	}
	return fmt.Errorf("unexpected %q at offset %d, want %s", p.s[p.pos:], p.pos, want)
}

func isWordByte(c byte) bool { return isAlnum(c) || c == '_' }

// group joins terms with op, splicing in operands that are groups of the
// same op so that equal expressions have one tree and one String.
func group(op string, terms []*Marker) *Marker {
	var flat []*Marker
	for _, t := range terms {
		if t.op == op {
			flat = append(flat, t.terms...)
		} else {
			flat = append(flat, t)
		}
	}
	if len(flat) == 1 {
		return flat[0]
	}
	return &Marker{op: op, terms: flat}
}

// And returns a marker that holds when all of ms hold. Nil markers always
// hold and are left out; And of no markers is nil.
func And(ms ...*Marker) *Marker {
	ms = slices.DeleteFunc(slices.Clone(ms), func(m *Marker) bool { return m == nil })
	if len(ms) == 0 {
		return nil
	}
	return group("and", ms)
}

// Or returns a marker that holds when any of ms holds. A nil marker always
// holds, so Or with a nil argument, or with none, is nil.
func Or(ms ...*Marker) *Marker {
	if len(ms) == 0 || slices.Contains(ms, nil) {
		return nil
	}
	return group("or", ms)
}

// Evaluate reports whether the marker holds in env with the given extras
// selected. A nil marker always holds.
//
// A comparison whose variable side parses as a PEP 440 version and whose
// operator and literal form a valid specifier compares versions, with
// pre-releases allowed; otherwise it compares strings. "in" and "not in"
// test for substrings. `extra == "x"` holds when x is among extras, both
// sides compared in PEP 685 normal form; with no extras, extra is "".
func (m *Marker) Evaluate(env Env, extras []string) bool {
	if m == nil {
		return true
	}
	switch m.op {
	case "and":
		for _, t := range m.terms {
			if !t.Evaluate(env, extras) {
				return false
			}
		}
		return true
	case "or":
		for _, t := range m.terms {
			if t.Evaluate(env, extras) {
				return true
			}
		}
		return false
	}
	return m.evalComparison(env, extras)
}

func (m *Marker) evalComparison(env Env, extras []string) bool {
	normalized := make([]string, len(extras))
	for i, e := range extras {
		normalized[i] = NormalizeName(e)
	}
	switch {
	case m.right.variable == "extras":
		return slices.Contains(normalized, m.left.value) == (m.cmp == "in")
	case m.right.variable == "dependency_groups":
		// No dependency group is ever installed.
		return m.cmp == "not in"
	case m.left.variable == "extra" || m.right.variable == "extra":
		if len(normalized) == 0 {
			normalized = []string{""}
		}
		// A negative comparison must hold for every extra, a positive one
		// for some extra.
		negative := m.cmp == "!=" || m.cmp == "not in"
		for _, e := range normalized {
			if compare(m.left.resolve(env, e), m.cmp, m.right.resolve(env, e)) != negative {
				return !negative
			}
		}
		return negative
	}
	return compare(m.left.resolve(env, ""), m.cmp, m.right.resolve(env, ""))
}

func (o operand) resolve(env Env, extra string) string {
	switch o.variable {
	case "":
		return o.value
	case "extra":
		return extra
	}
	return env[o.variable]
}

// compare applies one marker operator to resolved values.
func compare(l, op, r string) bool {
	switch op {
	case "in":
		return strings.Contains(r, l)
	case "not in":
		return !strings.Contains(r, l)
	case "===":
		return strings.EqualFold(l, strings.TrimSpace(r))
	}
	if v, err := pep440.Parse(l); err == nil {
		if spec, err := pep440.ParseSpecifier(op + r); err == nil && spec.Op == op {
			return pep440.Specifiers{spec}.Contains(v, true)
		}
	}
	switch op {
	case "==":
		return l == r
	case "!=":
		return l != r
	case "<":
		return l < r
	case "<=":
		return l <= r
	case ">":
		return l > r
	case ">=":
		return l >= r
	}
	return false // "~=" has no meaning for strings
}

// String returns the canonical form: double quotes (single when the value
// holds a double quote), single spaces, canonical variable names and only
// the parentheses that "and" binding tighter than "or" requires.
func (m *Marker) String() string {
	if m == nil {
		return ""
	}
	var b strings.Builder
	m.write(&b, "")
	return b.String()
}

func (m *Marker) write(b *strings.Builder, parent string) {
	if m.op == "" {
		m.left.write(b)
		b.WriteString(" " + m.cmp + " ")
		m.right.write(b)
		return
	}
	paren := parent == "and" && m.op == "or"
	if paren {
		b.WriteByte('(')
	}
	for i, t := range m.terms {
		if i > 0 {
			b.WriteString(" " + m.op + " ")
		}
		t.write(b, m.op)
	}
	if paren {
		b.WriteByte(')')
	}
}

func (o operand) write(b *strings.Builder) {
	switch {
	case o.variable != "":
		b.WriteString(o.variable)
	case strings.Contains(o.value, `"`):
		b.WriteString("'" + o.value + "'")
	default:
		b.WriteString(`"` + o.value + `"`)
	}
}
