package pep440

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestParseSpecifiers(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"", "", true},
		{"  ", "", true},
		{">=1.0, <2", "<2,>=1.0", true},
		{">= 1.0 ,< 2", "<2,>=1.0", true},
		{"==2.*", "==2.*", true},
		{"== v2.00.*", "==2.0.*", true},
		{"~=1.4.5", "~=1.4.5", true},
		{"===x", "===x", true},
		{"!=1.1.*", "!=1.1.*", true},
		{">=1.0-ALPHA", ">=1.0a0", true},
		{">=1,>=1.0", ">=1,>=1.0", true},
		{">=1.0,>=1.0", ">=1.0", true},
		{">=1.0,,<2,", "<2,>=1.0", true},
		{"==1.0+Local", "==1.0+local", true},
		{"!=1.0+local", "!=1.0+local", true},
		{"1.0", "", false},
		{">=", "", false},
		{"=>1.0", "", false},
		{">=1.0+local", "", false},
		{"~=1", "", false},
		{"~=1.0.*", "", false},
		{">=1.0.*", "", false},
		{"==1.0a1.*", "", false},
		{"==1.0+l.*", "", false},
		{"== 1.0 .0", "", false},
		{"===a b", "", false},
		{"===a;b", "", false},
		{"=== ", "", false},
		{">=1.0 <2", "", false},
	}
	for _, tt := range tests {
		ss, err := ParseSpecifiers(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseSpecifiers(%q) error = %v, want ok %v", tt.in, err, tt.ok)
			continue
		}
		if got := ss.String(); err == nil && got != tt.want {
			t.Errorf("ParseSpecifiers(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseSpecifiersError(t *testing.T) {
	tests := []struct{ in, want string }{
		{">=1.0, 2", `invalid specifier " 2": want an operator (one of === ~= == != <= >= < >) before the version`},
		{"~=1", `invalid specifier "~=1": ~= needs at least two release numbers, as in ~=1.0`},
		{">=1..0", `invalid specifier ">=1..0": version "1..0": unexpected "..0" at offset 1, want end of version`},
		{"<1.0+x", `invalid specifier "<1.0+x": a local version label is only allowed with == and !=, not "<"`},
	}
	for _, tt := range tests {
		_, err := ParseSpecifiers(tt.in)
		if err == nil || err.Error() != tt.want {
			t.Errorf("ParseSpecifiers(%q) error = %v, want %v", tt.in, err, tt.want)
		}
	}
}

func TestAllowsPrereleases(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"", false},
		{">=1.0", false},
		{">=1.0b1", true},
		{"<1.0.dev0", true},
		{"!=1.0b1", false},
		{"==1.*", false},
		{">=1.0,<=2.0rc1", true},
		{"===1.0a1", true},
		{"===foo", false},
	}
	for _, tt := range tests {
		ss, err := ParseSpecifiers(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := ss.AllowsPrereleases(); got != tt.want {
			t.Errorf("ParseSpecifiers(%q).AllowsPrereleases() = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestContains runs the cases of testdata/contains.txt.
func TestContains(t *testing.T) {
	f, err := os.Open("testdata/contains.txt")
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
			t.Fatalf("testdata/contains.txt: line %q has %d fields, want 4", line, len(fields))
		}
		for i := range fields {
			fields[i] = strings.TrimSpace(fields[i])
		}
		pre, err1 := strconv.ParseBool(fields[2])
		want, err2 := strconv.ParseBool(fields[3])
		ss, err3 := ParseSpecifiers(fields[0])
		v, err4 := Parse(fields[1])
		for _, err := range []error{err1, err2, err3, err4} {
			if err != nil {
				t.Fatalf("testdata/contains.txt: line %q: %v", line, err)
			}
		}
		if got := ss.Contains(v, pre); got != want {
			t.Errorf("ParseSpecifiers(%q).Contains(%q, %v) = %v, want %v", fields[0], fields[1], pre, got, want)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 20 {
		t.Fatalf("read only %d cases from testdata/contains.txt", n)
	}
}

// TestContainsHandBuilt checks clauses built as literals, not parsed.
func TestContainsHandBuilt(t *testing.T) {
	tests := []struct {
		ss   Specifiers
		v    string
		want bool
	}{
		{Specifiers{{Op: ">=", Version: "1.0"}}, "1.1", true},
		{Specifiers{{Op: ">=", Version: "1.0"}}, "0.9", false},
		{Specifiers{{Op: ">=", Version: "bogus"}}, "1.0", false},
		{Specifiers{{Op: "=<", Version: "1.0"}}, "1.0", false},
	}
	for _, tt := range tests {
		if got := tt.ss.Contains(MustParse(tt.v), false); got != tt.want {
			t.Errorf("%v.Contains(%q, false) = %v, want %v", tt.ss, tt.v, got, tt.want)
		}
	}
}
