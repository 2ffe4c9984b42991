package pep508

import (
	"slices"
	"testing"
)

func TestNormalizeName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Django", "django"},
		{"zope.interface", "zope-interface"},
		{"Foo__Bar-.-baz", "foo-bar-baz"},
		{"psycopg2-binary", "psycopg2-binary"},
		{"a_", "a-"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := NormalizeName(tt.in); got != tt.want {
			t.Errorf("NormalizeName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseRequirement(t *testing.T) {
	tests := []struct {
		in     string
		name   string
		extras []string
		specs  string
		url    string
		marker string
		str    string
	}{
		{"Django", "django", nil, "", "", "", "django"},
		{"Django>=4.2,<5", "django", nil, "<5,>=4.2", "", "", "django<5,>=4.2"},
		{"Django (>=4.2, <5)", "django", nil, "<5,>=4.2", "", "", "django<5,>=4.2"},
		{"  zope.interface ==5.*  ", "zope-interface", nil, "==5.*", "", "", "zope-interface==5.*"},
		{"requests[Socks, security,socks]>=2", "requests", []string{"security", "socks"}, ">=2", "", "", "requests[security,socks]>=2"},
		{"requests [ ] >=2", "requests", nil, ">=2", "", "", "requests>=2"},
		{`tzdata; sys_platform == "win32"`, "tzdata", nil, "", "", `sys_platform == "win32"`, `tzdata; sys_platform == "win32"`},
		{`importlib-metadata>=4.6;python_version<'3.10'`, "importlib-metadata", nil, ">=4.6", "", `python_version < "3.10"`, `importlib-metadata>=4.6; python_version < "3.10"`},
		{`cssselect2 (>=0.1) ; extra == 'CSS'`, "cssselect2", nil, ">=0.1", "", `extra == "css"`, `cssselect2>=0.1; extra == "css"`},
		{"pkg @ https://example.org/pkg-1.0.tar.gz", "pkg", nil, "", "https://example.org/pkg-1.0.tar.gz", "", "pkg @ https://example.org/pkg-1.0.tar.gz"},
		{"pkg[x]@https://e.org/p.whl ; os_name == 'posix'", "pkg", []string{"x"}, "", "https://e.org/p.whl", `os_name == "posix"`, `pkg[x] @ https://e.org/p.whl ; os_name == "posix"`},
		{"pkg @ file:///tmp/a;b", "pkg", nil, "", "file:///tmp/a;b", "", "pkg @ file:///tmp/a;b"},
		{"name===1.0-odd", "name", nil, "===1.0-odd", "", "", "name===1.0-odd"},
		{"A1", "a1", nil, "", "", "", "a1"},
	}
	for _, tt := range tests {
		r, err := ParseRequirement(tt.in)
		if err != nil {
			t.Errorf("ParseRequirement(%q) error: %v", tt.in, err)
			continue
		}
		if r.Name != tt.name || !slices.Equal(r.Extras, tt.extras) || r.Specifiers.String() != tt.specs || r.URL != tt.url || r.Marker.String() != tt.marker {
			t.Errorf("ParseRequirement(%q) = {%q %q %q %q %q}, want {%q %q %q %q %q}", tt.in,
				r.Name, r.Extras, r.Specifiers, r.URL, r.Marker, tt.name, tt.extras, tt.specs, tt.url, tt.marker)
		}
		if got := r.String(); got != tt.str {
			t.Errorf("ParseRequirement(%q).String() = %q, want %q", tt.in, got, tt.str)
		}
	}
}

func TestParseRequirementError(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `invalid requirement "": want a package name at the start`},
		{">=1.0", `invalid requirement ">=1.0": want a package name at the start`},
		{"-pkg", `invalid requirement "-pkg": name "-pkg" must start and end with a letter or digit and hold only letters, digits, "-", "_" and "."`},
		{"pkg_", `invalid requirement "pkg_": name "pkg_" must start and end with a letter or digit and hold only letters, digits, "-", "_" and "."`},
		{"pkg[a", `invalid requirement "pkg[a": extras "[a" lack the closing "]"`},
		{"pkg[a,]", `invalid requirement "pkg[a,]": extra "" is not a valid name; want letters, digits, "-", "_" and ".", comma-separated`},
		{"pkg[a b]", `invalid requirement "pkg[a b]": extra "a b" is not a valid name; want letters, digits, "-", "_" and ".", comma-separated`},
		{"pkg (>=1.0", `invalid requirement "pkg (>=1.0": version specifiers "(>=1.0" lack the closing ")"`},
		{"pkg (>=1.0) x", `invalid requirement "pkg (>=1.0) x": unexpected "x" after the version specifiers, want ";" or the end`},
		{"pkg >=1.0)", `invalid requirement "pkg >=1.0)": version specifiers ">=1.0)" hold one of ()[]@; want a list like >=1.0,<2`},
		{"pkg 1.0", `invalid requirement "pkg 1.0": invalid specifier "1.0": want an operator (one of === ~= == != <= >= < >) before the version`},
		{"pkg @", `invalid requirement "pkg @": want a URL after "@"`},
		{"pkg @ https://e.org x", `invalid requirement "pkg @ https://e.org x": unexpected "x" after the URL, want " ; marker" or the end`},
		{"pkg;", `invalid requirement "pkg;": invalid marker "": unexpected end, want a marker variable or a quoted string`},
		{"pkg; foo == 'x'", `invalid requirement "pkg; foo == 'x'": invalid marker " foo == 'x'": unknown marker variable "foo" at offset 1 (want one such as python_version, sys_platform, platform_machine or extra)`},
	}
	for _, tt := range tests {
		_, err := ParseRequirement(tt.in)
		if err == nil || err.Error() != tt.want {
			t.Errorf("ParseRequirement(%q) error = %v, want %v", tt.in, err, tt.want)
		}
	}
}
