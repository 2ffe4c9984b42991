package pep508

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestParseMarkerString(t *testing.T) {
	tests := []struct{ in, want string }{
		{`python_version < "3.13"`, `python_version < "3.13"`},
		{`python_version<'3.13'`, `python_version < "3.13"`},
		{"\tpython_version  <  '3.13' ", `python_version < "3.13"`},
		{`'3.8' <= python_version`, `"3.8" <= python_version`},
		{`os.name == "posix"`, `os_name == "posix"`},
		{`python_implementation == "CPython"`, `platform_python_implementation == "CPython"`},
		{`platform.machine=="x86_64"`, `platform_machine == "x86_64"`},
		{`extra == "CSS_Extra"`, `extra == "css-extra"`},
		{`"Docs.Dev" == extra`, `"docs-dev" == extra`},
		{`"Docs" in extras`, `"docs" in extras`},
		{`sys_platform == 'say "hi"'`, `sys_platform == 'say "hi"'`},
		{`os_name not   in "nt"`, `os_name not in "nt"`},
		{`os_name=="a"and os_name=="b"or os_name=="c"`, `os_name == "a" and os_name == "b" or os_name == "c"`},
		{`(os_name == "a" and os_name == "b") or os_name == "c"`, `os_name == "a" and os_name == "b" or os_name == "c"`},
		{`os_name == "a" and (os_name == "b" or os_name == "c")`, `os_name == "a" and (os_name == "b" or os_name == "c")`},
		{`((os_name == "a"))`, `os_name == "a"`},
		{`(os_name == "a" and os_name == "b") and os_name == "c"`, `os_name == "a" and os_name == "b" and os_name == "c"`},
		{`(os_name == "a" or (os_name == "b" or os_name == "c"))`, `os_name == "a" or os_name == "b" or os_name == "c"`},
		{`os_name == "a" and ((os_name == "b" or os_name == "c") and os_name == "d")`, `os_name == "a" and (os_name == "b" or os_name == "c") and os_name == "d"`},
		{`python_version === "3.11"`, `python_version === "3.11"`},
		{`python_version ~= "3.11"`, `python_version ~= "3.11"`},
	}
	for _, tt := range tests {
		m, err := ParseMarker(tt.in)
		if err != nil {
			t.Errorf("ParseMarker(%q) error: %v", tt.in, err)
			continue
		}
		if got := m.String(); got != tt.want {
			t.Errorf("ParseMarker(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseMarkerError(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, `invalid marker "": unexpected end, want a marker variable or a quoted string`},
		{`python_versio < "3"`, `invalid marker "python_versio < \"3\"": unknown marker variable "python_versio" at offset 0 (want one such as python_version, sys_platform, platform_machine or extra)`},
		{`"3" < "4"`, `invalid marker "\"3\" < \"4\"": "\"3\" < \"4\"" compares two quoted strings; one side must be a marker variable`},
		{`os_name == sys_platform`, `invalid marker "os_name == sys_platform": "os_name == sys_platform" compares two variables; one side must be a quoted string`},
		{`extras == "a"`, `invalid marker "extras == \"a\"": "extras == \"a\"" must compare a set variable with "in" or "not in", as in '"name" in extras'`},
		{`os_name = "a"`, `invalid marker "os_name = \"a\"": unexpected "= \"a\"" at offset 8, want a comparison operator (one of === == ~= != <= >= < > in, not in)`},
		{`os_name == "a`, `invalid marker "os_name == \"a": string at offset 11 lacks its closing "`},
		{`(os_name == "a"`, `invalid marker "(os_name == \"a\"": unexpected end, want ")"`},
		{`os_name == "a")`, `invalid marker "os_name == \"a\")": unexpected ")" at offset 14, want "and", "or" or the end of the marker`},
		{`os_name == "a" and`, `invalid marker "os_name == \"a\" and": unexpected end, want a marker variable or a quoted string`},
		{`os_name == "a" andos_name == "b"`, `invalid marker "os_name == \"a\" andos_name == \"b\"": unexpected "andos_name == \"b\"" at offset 15, want "and", "or" or the end of the marker`},
		{`os_name notin "a"`, `invalid marker "os_name notin \"a\"": unexpected "notin \"a\"" at offset 8, want a comparison operator (one of === == ~= != <= >= < > in, not in)`},
		{`os_name not "a"`, `invalid marker "os_name not \"a\"": unexpected "\"a\"" at offset 12, want "in" after "not "`},
		{strings.Repeat("(", 101) + `os_name == "a"` + strings.Repeat(")", 101), ""},
	}
	for _, tt := range tests {
		_, err := ParseMarker(tt.in)
		if err == nil {
			t.Errorf("ParseMarker(%q) succeeded, want error %v", tt.in, tt.want)
			continue
		}
		if tt.want != "" && err.Error() != tt.want {
			t.Errorf("ParseMarker(%q) error = %v, want %v", tt.in, err, tt.want)
		}
	}
}

// TestEvaluate runs the cases of testdata/evaluate.txt.
func TestEvaluate(t *testing.T) {
	f, err := os.Open("testdata/evaluate.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		fields := strings.Split(line, "|")
		if len(fields) != 4 {
			t.Fatalf("testdata/evaluate.txt: line %q has %d fields, want 4", line, len(fields))
		}
		for i := range fields {
			fields[i] = strings.TrimSpace(fields[i])
		}
		target := strings.Fields(fields[1])
		minor, err1 := strconv.Atoi(target[0])
		want, err2 := strconv.ParseBool(fields[3])
		m, err3 := ParseMarker(fields[0])
		for _, err := range []error{err1, err2, err3} {
			if err != nil {
				t.Fatalf("testdata/evaluate.txt: line %q: %v", line, err)
			}
		}
		var extras []string
		if fields[2] != "" {
			extras = strings.Split(fields[2], ",")
		}
		if got := m.Evaluate(LinuxCPython(minor, target[1]), extras); got != want {
			t.Errorf("ParseMarker(%q).Evaluate(3.%d %s, %q) = %v, want %v", fields[0], minor, target[1], extras, got, want)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 30 {
		t.Fatalf("read only %d cases from testdata/evaluate.txt", n)
	}
}

func TestEvaluateNil(t *testing.T) {
	var m *Marker
	if !m.Evaluate(nil, nil) {
		t.Errorf("(*Marker)(nil).Evaluate() = false, want true")
	}
	if got := m.String(); got != "" {
		t.Errorf("(*Marker)(nil).String() = %q, want %q", got, "")
	}
}

func TestEvaluateMissingVariable(t *testing.T) {
	m, err := ParseMarker(`platform_release == ""`)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Evaluate(Env{}, nil) {
		t.Errorf("ParseMarker(%q).Evaluate(Env{}) = false, want true (missing variables are empty)", m)
	}
}

func TestAndOr(t *testing.T) {
	a, _ := ParseMarker(`os_name == "a"`)
	b, _ := ParseMarker(`os_name == "b" or os_name == "c"`)
	c, _ := ParseMarker(`os_name == "d" and os_name == "e"`)
	tests := []struct {
		name string
		got  *Marker
		want string
	}{
		{"And()", And(), ""},
		{"And(nil, nil)", And(nil, nil), ""},
		{"And(a, nil)", And(a, nil), `os_name == "a"`},
		{"And(a, b)", And(a, b), `os_name == "a" and (os_name == "b" or os_name == "c")`},
		{"And(c, a)", And(c, a), `os_name == "d" and os_name == "e" and os_name == "a"`},
		{"Or()", Or(), ""},
		{"Or(a, nil)", Or(a, nil), ""},
		{"Or(a, b)", Or(a, b), `os_name == "a" or os_name == "b" or os_name == "c"`},
		{"Or(c, a)", Or(c, a), `os_name == "d" and os_name == "e" or os_name == "a"`},
		{"And(Or(a, c), b)", And(Or(a, c), b), `(os_name == "a" or os_name == "d" and os_name == "e") and (os_name == "b" or os_name == "c")`},
	}
	for _, tt := range tests {
		if got := tt.got.String(); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := b.String(); got != `os_name == "b" or os_name == "c"` {
		t.Errorf("Or(a, b) changed b to %q", got)
	}
	env := Env{"os_name": "a"}
	if And(a, b).Evaluate(env, nil) || !Or(a, b).Evaluate(env, nil) {
		t.Errorf("And(a, b), Or(a, b) evaluate to %v, %v with os_name a, want false, true", And(a, b).Evaluate(env, nil), Or(a, b).Evaluate(env, nil))
	}
}

func TestLinuxCPython(t *testing.T) {
	env := LinuxCPython(13, "aarch64")
	want := map[string]string{
		"os_name": "posix", "sys_platform": "linux", "platform_system": "Linux",
		"platform_machine": "aarch64", "python_version": "3.13", "python_full_version": "3.13.0",
		"implementation_name": "cpython", "implementation_version": "3.13.0",
		"platform_python_implementation": "CPython",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("LinuxCPython(13, %q)[%q] = %q, want %q", "aarch64", k, env[k], v)
		}
	}
	if len(env) != len(want) {
		t.Errorf("LinuxCPython(13, %q) has %d variables, want %d", "aarch64", len(env), len(want))
	}
}
