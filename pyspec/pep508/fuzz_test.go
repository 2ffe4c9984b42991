package pep508

import "testing"

// fuzzEnvs are the targets on which a marker and its String must agree.
var fuzzEnvs = []Env{LinuxCPython(11, "x86_64"), LinuxCPython(14, "aarch64")}

func FuzzParseMarker(f *testing.F) {
	for _, s := range markerAtoms() {
		f.Add(s)
	}
	for _, s := range []string{
		`(os_name == "a" or (os_name == "b" and extra == "X_y")) and python_version >= '3.12'`,
		`python_version>="3.12"and(sys_platform=="win32"or os_name=="posix")`,
		`"css" in extras and "dev" not in dependency_groups`,
		`sys_platform == 'say "hi"'`,
		`os.name == "posix" or python_implementation == "PyPy"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMarker(s)
		if err != nil {
			return
		}
		canon := m.String()
		m2, err := ParseMarker(canon)
		if err != nil {
			t.Fatalf("ParseMarker(%q).String() = %q, which does not parse: %v", s, canon, err)
		}
		if got := m2.String(); got != canon {
			t.Fatalf("ParseMarker(ParseMarker(%q).String()) = %q, want %q", s, got, canon)
		}
		for _, env := range fuzzEnvs {
			for _, extras := range [][]string{nil, {"css", "x-y"}} {
				if a, b := m.Evaluate(env, extras), m2.Evaluate(env, extras); a != b {
					t.Fatalf("Evaluate(%v, %q) is %v for %q but %v for its String %q", env, extras, a, s, b, canon)
				}
			}
		}
	})
}

func FuzzParseRequirement(f *testing.F) {
	for _, s := range []string{
		"Django>=4.2,<5",
		"requests[Socks, security]>=2 ; python_version < '3.13'",
		"cssselect2 (>=0.1) ; extra == 'CSS'",
		"pkg[x]@https://e.org/p.whl ; os_name == 'posix'",
		"name===1.0-odd",
		"zope.interface ==5.*",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRequirement(s)
		if err != nil {
			return
		}
		canon := r.String()
		r2, err := ParseRequirement(canon)
		if err != nil {
			t.Fatalf("ParseRequirement(%q).String() = %q, which does not parse: %v", s, canon, err)
		}
		if got := r2.String(); got != canon {
			t.Fatalf("ParseRequirement(ParseRequirement(%q).String()) = %q, want %q", s, got, canon)
		}
		if r2.Name != NormalizeName(r2.Name) {
			t.Fatalf("ParseRequirement(%q).Name = %q, not in normal form", s, r2.Name)
		}
	})
}
