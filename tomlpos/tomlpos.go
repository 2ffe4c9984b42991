// Package tomlpos finds where each key of a TOML document is, and what type
// its value has, from go-toml's own parser: the syntax tree of the document,
// not a scan of its text. Errors found after decoding (a missing field, a
// bad value, a wrong type) use it to name the line. Decoding is go-toml's
// job, and what the keys mean is the caller's.
//
// A key is named by its path: keys joined by dots, array elements by their
// index in brackets, as in "packages[2].wheels[0].url" (see Join, Elem). An
// array of tables is an array: each [[packages]] header is the next
// element.
package tomlpos

import (
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// Index maps the paths of a document's keys, table headers and array
// elements to where they first appear.
type Index struct {
	keys map[string]entry
}

type entry struct {
	line int
	kind string
}

// Join is the path of key in the table at path.
func Join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Elem is the path of element i of the array at path.
func Elem(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// Parent strips the last key or index from path; the parent of a top-level
// key is "".
func Parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// Parse indexes data. It is meant for a document that a decoder has
// already accepted: in one with a syntax error, the keys after the error
// are missing.
func Parse(data []byte) Index {
	var nl []int // offsets of '\n'
	for i, c := range data {
		if c == '\n' {
			nl = append(nl, i)
		}
	}
	b := builder{idx: Index{keys: map[string]entry{}}, arrays: map[string]int{}}
	b.line = func(n *unstable.Node) int {
		for n != nil && n.Raw.Length == 0 {
			n = n.Child()
		}
		if n == nil {
			return 0
		}
		return sort.SearchInts(nl, int(n.Raw.Offset)) + 1
	}
	var p unstable.Parser
	p.Reset(data)
	table := ""
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.KeyValue:
			b.keyValue(table, e)
		case unstable.Table, unstable.ArrayTable:
			table = b.header(e)
		}
	}
	return b.idx
}

// Line is the line path is on, or 0 when the document does not have it.
func (x Index) Line(path string) int {
	return x.keys[path].line
}

// Nearest is the line of path or, when the document does not have it, of
// its closest ancestor (a missing key is reported at its table); 0 when
// there is none.
func (x Index) Nearest(path string) int {
	for p := path; p != ""; p = Parent(p) {
		if e, ok := x.keys[p]; ok {
			return e.line
		}
	}
	return 0
}

// Kind is the TOML type of the value at path: "string", "integer",
// "float", "boolean", "offset date-time", "local date-time", "local date",
// "local time", "array" or "table"; "" when the document does not have it.
func (x Index) Kind(path string) string {
	return x.keys[path].kind
}

var kinds = map[unstable.Kind]string{
	unstable.String:        "string",
	unstable.Integer:       "integer",
	unstable.Float:         "float",
	unstable.Bool:          "boolean",
	unstable.DateTime:      "offset date-time",
	unstable.LocalDateTime: "local date-time",
	unstable.LocalDate:     "local date",
	unstable.LocalTime:     "local time",
	unstable.Array:         "array",
	unstable.InlineTable:   "table",
	unstable.Table:         "table",
	unstable.ArrayTable:    "table",
}

type builder struct {
	idx    Index
	arrays map[string]int // array-of-tables path -> elements so far
	line   func(*unstable.Node) int
}

func (b *builder) set(path string, line int, kind unstable.Kind) {
	if _, ok := b.idx.keys[path]; !ok && line > 0 {
		b.idx.keys[path] = entry{line: line, kind: kinds[kind]}
	}
}

// header resolves a [table] or [[array]] header to its path: a key naming
// an array of tables stands for its last element.
func (b *builder) header(e *unstable.Node) string {
	var parts []string
	it := e.Key()
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	path := ""
	for i, k := range parts {
		path = Join(path, k)
		n := b.arrays[path]
		if i == len(parts)-1 && e.Kind == unstable.ArrayTable {
			b.arrays[path] = n + 1
			path = Elem(path, n)
		} else if n > 0 {
			path = Elem(path, n-1)
		}
	}
	b.set(path, b.line(e), e.Kind)
	return path
}

func (b *builder) keyValue(table string, e *unstable.Node) {
	path := table
	v := e.Value()
	it := e.Key()
	for it.Next() {
		path = Join(path, string(it.Node().Data))
		// The last key holds the value; a dotted key's first parts are
		// tables.
		kind := unstable.InlineTable
		if it.IsLast() {
			kind = v.Kind
		}
		b.set(path, b.line(it.Node()), kind)
	}
	b.value(path, v)
}

func (b *builder) value(path string, v *unstable.Node) {
	switch v.Kind {
	case unstable.InlineTable:
		it := v.Children()
		for it.Next() {
			if n := it.Node(); n.Kind == unstable.KeyValue {
				b.keyValue(path, n)
			}
		}
	case unstable.Array:
		i := 0
		it := v.Children()
		for it.Next() {
			n := it.Node()
			if n.Kind == unstable.Comment {
				continue
			}
			b.set(Elem(path, i), b.line(n), n.Kind)
			b.value(Elem(path, i), n)
			i++
		}
	}
}
