package pep440

import (
	"bufio"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in, want string // want "" means an error
	}{
		{"1.0", "1.0"},
		{"  1.0\n", "1.0"},
		{"v1.0", "1.0"},
		{"V2", "2"},
		{"1.0rc1", "1.0rc1"},
		{"1.0-RC.1", "1.0rc1"},
		{"1.0c1", "1.0rc1"},
		{"1.0pre", "1.0rc0"},
		{"1.0preview2", "1.0rc2"},
		{"1.0alpha", "1.0a0"},
		{"1.0_beta_3", "1.0b3"},
		{"2.9.0.post0", "2.9.0.post0"},
		{"1.0-1", "1.0.post1"},
		{"1.0post", "1.0.post0"},
		{"1.0-r4", "1.0.post4"},
		{"1.0.rev", "1.0.post0"},
		{"1.0dev", "1.0.dev0"},
		{"1.0-dev-2", "1.0.dev2"},
		{"1.0a.dev", "1.0a0.dev0"},
		{"1!2.0", "1!2.0"},
		{"0!2.0", "2.0"},
		{"01.002.0", "1.2.0"},
		{"1.0+Ubuntu-1", "1.0+ubuntu.1"},
		{"1.0+abc.007", "1.0+abc.7"},
		{"1.0+000", "1.0+0"},
		{"2!3.4.5a6.post7.dev8+9.x", "2!3.4.5a6.post7.dev8+9.x"},
		{"", ""},
		{"1..0", ""},
		{"1.0.", ""},
		{".1", ""},
		{"1.0a1a2", ""},
		{"1.0+", ""},
		{"1.0+a..b", ""},
		{"1!", ""},
		{"1.0 a1", ""},
		{"1.0.*", ""},
		{"a1", ""},
		{"1.0e", ""},
		{"1.0\u212a", ""}, // Kelvin sign is not an ASCII "k"
		{"99999999999999999999999", ""},
	}
	for _, tt := range tests {
		v, err := Parse(tt.in)
		got := v.String()
		if err != nil {
			got = ""
		}
		if got != tt.want {
			t.Errorf("Parse(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseError(t *testing.T) {
	tests := []struct{ in, want string }{
		{"1..0", `invalid version "1..0": unexpected "..0" at offset 1, want end of version`},
		{"", `invalid version "": unexpected end, want a release number such as 1.0`},
		{"1!x", `invalid version "1!x": unexpected "x" at offset 2, want a release number after the epoch`},
		{"1.0+", `invalid version "1.0+": unexpected end, want a local version label of letters and digits`},
		{"1.99999999999999999999", `invalid version "1.99999999999999999999": number "99999999999999999999" is too large (want at most 9223372036854775807)`},
	}
	for _, tt := range tests {
		_, err := Parse(tt.in)
		if err == nil || err.Error() != tt.want {
			t.Errorf("Parse(%q) error = %v, want %v", tt.in, err, tt.want)
		}
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("MustParse(%q) did not panic", "x")
		}
	}()
	MustParse("x")
}

// TestCompareOrdered checks every pair of testdata/ordered.txt: lines are
// in increasing order and versions on one line are equal.
func TestCompareOrdered(t *testing.T) {
	f, err := os.Open("testdata/ordered.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var groups [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		groups = append(groups, strings.Fields(line))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(groups) < 10 {
		t.Fatalf("read only %d lines from testdata/ordered.txt", len(groups))
	}
	for i, gi := range groups {
		for j, gj := range groups {
			want := cmpInt(i, j)
			for _, a := range gi {
				for _, b := range gj {
					if got := MustParse(a).Compare(MustParse(b)); got != want {
						t.Errorf("MustParse(%q).Compare(%q) = %d, want %d", a, b, got, want)
					}
				}
			}
		}
	}
}

func TestAccessors(t *testing.T) {
	tests := []struct {
		in      string
		pre     bool
		post    bool
		release []int
		epoch   int
		local   string
		public  string
	}{
		{"1.0", false, false, []int{1, 0}, 0, "", "1.0"},
		{"1.0a1", true, false, []int{1, 0}, 0, "", "1.0a1"},
		{"1.0.dev1", true, false, []int{1, 0}, 0, "", "1.0.dev1"},
		{"1.0.post1.dev1", true, true, []int{1, 0}, 0, "", "1.0.post1.dev1"},
		{"1.0.post1", false, true, []int{1, 0}, 0, "", "1.0.post1"},
		{"2!1.2.3+Loc-1", false, false, []int{1, 2, 3}, 2, "loc.1", "2!1.2.3"},
	}
	for _, tt := range tests {
		v := MustParse(tt.in)
		if got := v.IsPrerelease(); got != tt.pre {
			t.Errorf("MustParse(%q).IsPrerelease() = %v, want %v", tt.in, got, tt.pre)
		}
		if got := v.IsPostrelease(); got != tt.post {
			t.Errorf("MustParse(%q).IsPostrelease() = %v, want %v", tt.in, got, tt.post)
		}
		if got := v.Release(); !slices.Equal(got, tt.release) {
			t.Errorf("MustParse(%q).Release() = %v, want %v", tt.in, got, tt.release)
		}
		if got := v.Epoch(); got != tt.epoch {
			t.Errorf("MustParse(%q).Epoch() = %v, want %v", tt.in, got, tt.epoch)
		}
		if got := v.Local(); got != tt.local {
			t.Errorf("MustParse(%q).Local() = %q, want %q", tt.in, got, tt.local)
		}
		if got := v.Public().String(); got != tt.public {
			t.Errorf("MustParse(%q).Public() = %q, want %q", tt.in, got, tt.public)
		}
	}
}

func TestReleaseIsACopy(t *testing.T) {
	v := MustParse("1.2")
	v.Release()[0] = 9
	if got := v.String(); got != "1.2" {
		t.Errorf("after changing Release(), MustParse(%q).String() = %q, want %q", "1.2", got, "1.2")
	}
}

func TestZeroVersion(t *testing.T) {
	var v Version
	if got := v.String(); got != "0" {
		t.Errorf("Version{}.String() = %q, want %q", got, "0")
	}
	if got := v.Compare(MustParse("0.0")); got != 0 {
		t.Errorf("Version{}.Compare(%q) = %d, want 0", "0.0", got)
	}
}
