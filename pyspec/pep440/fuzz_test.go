package pep440

import "testing"

func FuzzParse(f *testing.F) {
	for _, s := range append(append([]string{}, diffVersions...), diffSpellings...) {
		f.Add(s, "1.0")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		v, err := Parse(a)
		if err != nil {
			return
		}
		s := v.String()
		v2, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which does not parse: %v", a, s, err)
		}
		if got := v2.String(); got != s {
			t.Fatalf("Parse(Parse(%q).String()) = %q, want %q", a, got, s)
		}
		if c := v.Compare(v2); c != 0 {
			t.Fatalf("Parse(%q).Compare(its round trip %q) = %d, want 0", a, s, c)
		}
		w, err := Parse(b)
		if err != nil {
			return
		}
		if c, r := v.Compare(w), w.Compare(v); c != -r {
			t.Fatalf("Compare(%q, %q) = %d but Compare(%q, %q) = %d", a, b, c, b, a, r)
		}
		if c := v.Compare(w); c == 0 && v.Public().String() != w.Public().String() && len(v.Release()) == len(w.Release()) {
			t.Fatalf("Compare(%q, %q) = 0 but normal forms %q and %q differ", a, b, v, w)
		}
	})
}

func FuzzParseSpecifiers(f *testing.F) {
	for _, s := range diffSpecifiers() {
		f.Add(s, "1.0")
	}
	f.Fuzz(func(t *testing.T, s, ver string) {
		ss, err := ParseSpecifiers(s)
		if err != nil {
			return
		}
		canon := ss.String()
		ss2, err := ParseSpecifiers(canon)
		if err != nil {
			t.Fatalf("ParseSpecifiers(%q).String() = %q, which does not parse: %v", s, canon, err)
		}
		if got := ss2.String(); got != canon {
			t.Fatalf("ParseSpecifiers(ParseSpecifiers(%q).String()) = %q, want %q", s, got, canon)
		}
		v, err := Parse(ver)
		if err != nil {
			return
		}
		for _, pre := range []bool{false, true} {
			if a, b := ss.Contains(v, pre), ss2.Contains(v, pre); a != b {
				t.Fatalf("Contains(%q, %v) is %v for %q but %v for its canonical %q", ver, pre, a, s, b, canon)
			}
		}
	})
}
