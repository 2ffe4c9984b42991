package wheel

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/safearchive"
)

// TestParseEntryPoints runs testdata/entrypoints/*.txt: a comment line,
// then "-- entry_points.txt --" and the file, then "-- want --" and either
// one "name module attr" line per script or "err: " and a part of the
// expected error.
func TestParseEntryPoints(t *testing.T) {
	paths, _ := filepath.Glob("testdata/entrypoints/*.txt")
	if len(paths) == 0 {
		t.Fatal("no test cases in testdata/entrypoints")
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			_, rest, ok1 := strings.Cut(string(data), "-- entry_points.txt --\n")
			input, want, ok2 := strings.Cut(rest, "-- want --\n")
			if !ok1 || !ok2 {
				t.Fatalf("%s lacks the -- entry_points.txt -- or -- want -- marker", path)
			}
			eps, err := parseEntryPoints([]byte(input))
			if wantErr, isErr := strings.CutPrefix(want, "err: "); isErr {
				wantErr = strings.TrimSpace(wantErr)
				if err == nil || !strings.Contains(err.Error(), wantErr) {
					t.Errorf("parseEntryPoints(%q) = %v, want error containing %q", input, err, wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseEntryPoints(%q) = %v", input, err)
			}
			var got strings.Builder
			for _, ep := range eps {
				fmt.Fprintf(&got, "%s %s %s\n", ep.Name, ep.Module, ep.Attr)
			}
			if got.String() != want {
				t.Errorf("parseEntryPoints(%q) = %q, want %q", input, got.String(), want)
			}
		})
	}
}

func TestParseWheelFile(t *testing.T) {
	tests := []struct {
		in      string
		purelib bool
		wantErr string
	}{
		{"Wheel-Version: 1.0\nRoot-Is-Purelib: true\n", true, ""},
		{"Wheel-Version: 1.0\nRoot-Is-Purelib: True\r\n", true, ""},
		{"Wheel-Version: 1.0\nRoot-Is-Purelib: false\n", false, ""},
		{"Wheel-Version: 1.0\n", false, ""},
		{"Wheel-Version: 1.9\nRoot-Is-Purelib: true\n", true, ""}, // newer minor: read as 1.0
		{"Wheel-Version: 2.0\nRoot-Is-Purelib: true\n", false, `Wheel-Version "2.0" is not supported`},
		{"Wheel-Version: x\n", false, `Wheel-Version "x" is not supported`},
		{"Root-Is-Purelib: true\n", false, "no Wheel-Version"},
	}
	for _, tt := range tests {
		got, err := parseWheelFile([]byte(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseWheelFile(%q) = %v, want error containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.purelib {
			t.Errorf("parseWheelFile(%q) = %v, %v, want %v, nil", tt.in, got, err, tt.purelib)
		}
	}
}

func TestCheckName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"pkg/__init__.py", true},
		{"pkg/", true},
		{"pkg-1.0.data/scripts/x", true},
		{"..foo/x", true}, // a name starting with dots is still a name
		{"", false},
		{"../x", false},
		{"pkg/../../x", false},
		{"pkg/..", false},
		{"/etc/passwd", false},
		{"pkg//x", false},
		{"pkg/./x", false},
		{"./x", false},
		{`pkg\x`, false},
		{"pkg/x\x00", false},
	}
	for _, tt := range tests {
		err := safearchive.CheckName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("safearchive.CheckName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Django", "django"},
		{"zope.interface", "zope-interface"},
		{"Foo__Bar-.baz", "foo-bar-baz"},
		{"psycopg_binary", "psycopg-binary"},
	}
	for _, tt := range tests {
		if got := normalize(tt.in); got != tt.want {
			t.Errorf("normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseFilename(t *testing.T) {
	tests := []struct {
		in, name, version string
		ok                bool
	}{
		{"/cache/Django-4.2.7-py3-none-any.whl", "Django", "4.2.7", true},
		{"psycopg_binary-3.2.3-1-cp311-cp311-manylinux_2_17_x86_64.whl", "psycopg_binary", "3.2.3", true},
		{"demo-1.0.tar.gz", "", "", false},
		{"demo-1.0-py3-any.whl", "", "", false},
		{"demo--py3-none-any.whl", "", "", false},
	}
	for _, tt := range tests {
		name, version, err := parseFilename(tt.in)
		if (err == nil) != tt.ok || name != tt.name || version != tt.version {
			t.Errorf("parseFilename(%q) = %q, %q, %v, want %q, %q, ok=%v", tt.in, name, version, err, tt.name, tt.version, tt.ok)
		}
	}
}

func TestShebang(t *testing.T) {
	long := "/" + strings.Repeat("x", 120) + "/bin/python"
	tests := []struct{ python, want string }{
		{"/venv/bin/python", "#!/venv/bin/python\n"},
		{"/opt/a b/python", "#!/bin/sh\n'''exec' '/opt/a b/python' \"$0\" \"$@\"\n' '''\n"},
		{long, "#!/bin/sh\n'''exec' '" + long + "' \"$0\" \"$@\"\n' '''\n"},
		{"/" + strings.Repeat("y", 121), "#!/" + strings.Repeat("y", 121) + "\n"}, // 127 bytes with #! and newline
	}
	for _, tt := range tests {
		if got := shebang(tt.python); got != tt.want {
			t.Errorf("shebang(%q) = %q, want %q", tt.python, got, tt.want)
		}
	}
}

func TestParseRecord(t *testing.T) {
	good := "pkg/a.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n" +
		"\"pkg/with,comma.py\",sha512=" + strings.Repeat("A", 86) + ",12\n" +
		"pkg-1.0.dist-info/RECORD,,\n"
	tests := []struct {
		in      string
		want    []recordEntry
		wantErr string
	}{
		{good, []recordEntry{
			{"pkg/a.py", "sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU", 0},
			{"pkg/with,comma.py", "sha512=" + strings.Repeat("A", 86), 12},
			{"pkg-1.0.dist-info/RECORD", "", -1},
		}, ""},
		{"", nil, ""},
		{"a,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=,0\n", []recordEntry{{"a", "sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=", 0}}, ""},
		{"a,b\n", nil, "line 1 has 2 fields, want 3"},
		{",,\n", nil, "line 1 has an empty path"},
		{"a,,\na,,\n", nil, `line 2 lists "a" again`},
		{"a,md5=1B2M2Y8AsgTpgAmY7PhCfg,0\n", nil, `uses algorithm "md5"`},
		{"a,sha256=abc,0\n", nil, "is not a 32-byte sha256 digest"},
		{"a,sha256,0\n", nil, "is not of the form algo=digest"},
		{"a,,-1\n", nil, `size "-1" is not a decimal number`},
		{"a,,+1\n", nil, `size "+1" is not a decimal number`},
		{"a,,01\n", nil, `size "01" is not a decimal number`},
		{"a,,99999999999999999999\n", nil, "out of range"},
		{"\"a,,0\n", nil, "parse RECORD"},
	}
	for _, tt := range tests {
		got, err := parseRecord(strings.NewReader(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseRecord(%q) = %v, want error containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseRecord(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
		}
	}
}

// FuzzParseRecord checks that parseRecord never panics and that whatever
// it accepts survives formatRecord and a second parse unchanged.
func FuzzParseRecord(f *testing.F) {
	for _, seed := range []string{
		"pkg/a.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\npkg-1.0.dist-info/RECORD,,\n",
		"\"with,comma\",,\n\"with \"\"quote\"\"\",,5\n",
		"a,sha384=" + strings.Repeat("A", 64) + ",1\r\n",
		"a,b\n",
		"\n\n",
		"\"unterminated,,\n",
		"a,,1\na,,2\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseRecord(bytes.NewReader(data))
		if err != nil {
			return
		}
		out, err := formatRecord(entries)
		if err != nil {
			t.Fatalf("formatRecord(%v) = %v", entries, err)
		}
		again, err := parseRecord(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("parseRecord(formatRecord(%q)) = %v", data, err)
		}
		if !reflect.DeepEqual(entries, again) && (len(entries) != 0 || len(again) != 0) {
			t.Fatalf("round trip of %q = %v, want %v", data, again, entries)
		}
	})
}
