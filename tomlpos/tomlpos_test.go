package tomlpos

import "testing"

const doc = `# a comment
name = "x"
"quoted key" = 1
a.b.c = true

[table]
list = [
  "one", # a comment between elements
  2.5,
]
inline = { k = 1979-05-27T07:32:00Z, nested = { deep = [] } }

[[packages]]
name = "first"

[[packages]]
name = "second"
[[packages.wheels]]
url = "u"
[packages.sdist]
size = 3
`

func TestParse(t *testing.T) {
	x := Parse([]byte(doc))
	for _, tc := range []struct {
		path string
		line int
		kind string
	}{
		{"name", 2, "string"},
		{"quoted key", 3, "integer"},
		{"a", 4, "table"},
		{"a.b", 4, "table"},
		{"a.b.c", 4, "boolean"},
		{"table", 6, "table"},
		{"table.list", 7, "array"},
		{"table.list[0]", 8, "string"},
		{"table.list[1]", 9, "float"},
		{"table.inline", 11, "table"},
		{"table.inline.k", 11, "offset date-time"},
		{"table.inline.nested.deep", 11, "array"},
		{"packages[0]", 13, "table"},
		{"packages[0].name", 14, "string"},
		{"packages[1]", 16, "table"},
		{"packages[1].name", 17, "string"},
		{"packages[1].wheels[0]", 18, "table"},
		{"packages[1].wheels[0].url", 19, "string"},
		{"packages[1].sdist", 20, "table"},
		{"packages[1].sdist.size", 21, "integer"},
		{"missing", 0, ""},
		{"table.list[2]", 0, ""},
		{"packages[2]", 0, ""},
	} {
		if got := x.Line(tc.path); got != tc.line {
			t.Errorf("Line(%q) = %d, want %d", tc.path, got, tc.line)
		}
		if got := x.Kind(tc.path); got != tc.kind {
			t.Errorf("Kind(%q) = %q, want %q", tc.path, got, tc.kind)
		}
	}
}

func TestNearest(t *testing.T) {
	x := Parse([]byte(doc))
	for _, tc := range []struct {
		path string
		want int
	}{
		{"packages[1].sdist.size", 21},
		{"packages[1].sdist.name", 20},
		{"packages[1].wheels[0].hashes.sha256", 18},
		{"table.list[5]", 7},
		{"nothing.here", 0},
	} {
		if got := x.Nearest(tc.path); got != tc.want {
			t.Errorf("Nearest(%q) = %d, want %d", tc.path, got, tc.want)
		}
	}
}

func TestPaths(t *testing.T) {
	if got := Elem(Join(Join("", "packages"), "wheels"), 2); got != "packages.wheels[2]" {
		t.Errorf("Elem(Join(Join(\"\", \"packages\"), \"wheels\"), 2) = %q, want %q", got, "packages.wheels[2]")
	}
	for path, want := range map[string]string{
		"packages[1].wheels[0].url": "packages[1].wheels[0]",
		"packages[1].wheels[0]":     "packages[1].wheels",
		"packages[1]":               "packages",
		"packages":                  "",
	} {
		if got := Parent(path); got != want {
			t.Errorf("Parent(%q) = %q, want %q", path, got, want)
		}
	}
}

// TestParseSyntaxError: keys before the error are indexed, and Parse does
// not fail.
func TestParseSyntaxError(t *testing.T) {
	x := Parse([]byte("a = 1\nb = [\nc = 2\n"))
	if got := x.Line("a"); got != 1 {
		t.Errorf("Line(\"a\") = %d, want 1", got)
	}
	if got := x.Line("c"); got != 0 {
		t.Errorf("Line(\"c\") = %d, want 0 (after the error)", got)
	}
}
