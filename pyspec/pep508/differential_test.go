package pep508

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os/exec"
	"slices"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
	"github.com/bitpoll-install/bitpoll-install/pyspec/pep440"
)

type query struct {
	Op     string   `json:"op"`
	S      string   `json:"s"`
	Canon  string   `json:"canon,omitempty"`
	Py     int      `json:"py,omitempty"`
	Arch   string   `json:"arch,omitempty"`
	Extras []string `json:"extras,omitempty"`
}

type answer struct {
	OK     bool     `json:"ok"`
	Err    string   `json:"err"`
	Val    bool     `json:"val"`
	Canon  bool     `json:"canon"`
	Name   string   `json:"name"`
	Extras []string `json:"extras"`
	Spec   string   `json:"spec"`
	URL    string   `json:"url"`
	Marker string   `json:"marker"`
}

// askPackaging sends all queries to the packaging library in one python3
// process, skipping the test when python3 or packaging >= 26.4 is missing.
func askPackaging(t *testing.T, qs []query) []answer {
	t.Helper()
	if testing.Short() {
		t.Skip("differential test against python packaging is slow; skipped under -short")
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		testenv.Skip(t, "python3 not found; install it with the packaging library to compare against")
	}
	in, err := json.Marshal(qs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "testdata/differential.py")
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("run testdata/differential.py: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("run testdata/differential.py: %v", err)
	}
	var reply struct {
		Skip    string   `json:"skip"`
		Answers []answer `json:"answers"`
	}
	if err := json.Unmarshal(out, &reply); err != nil {
		t.Fatalf("decode differential.py output: %v", err)
	}
	if reply.Skip != "" {
		testenv.Skip(t, reply.Skip)
	}
	if len(reply.Answers) != len(qs) {
		t.Fatalf("got %d answers for %d queries", len(reply.Answers), len(qs))
	}
	return reply.Answers
}

// markerAtoms returns single comparisons on which this package and
// packaging agree by definition: version operators on version variables,
// equality and substring tests on string variables, and extras. Ordering
// comparisons of plain strings are left out: packaging answers them with
// equality, this package compares the strings as PEP 508 asks.
func markerAtoms() []string {
	var atoms []string
	quote := func(s string) string { return `"` + s + `"` }
	for _, v := range []string{"python_version", "python_full_version", "implementation_version"} {
		for _, op := range []string{"<", "<=", ">", ">=", "==", "!=", "~="} {
			for _, lit := range []string{"3.11", "3.12", "3.13.0", "3.8", "3.12.0rc1", "3.14", "4.0"} {
				atoms = append(atoms, v+" "+op+" "+quote(lit), quote(lit)+" "+op+" "+v)
			}
		}
		atoms = append(atoms, v+` == "3.*"`, v+` != "3.12.*"`, v+` in "3.11 3.12"`, `"3.1" in `+v)
	}
	for _, v := range []string{"os_name", "sys_platform", "platform_machine", "platform_system", "implementation_name", "platform_python_implementation"} {
		for _, lit := range []string{"linux", "posix", "x86_64", "aarch64", "Linux", "CPython", "nt", "arm", "x86", ""} {
			atoms = append(atoms, v+" == "+quote(lit), quote(lit)+" != "+v, quote(lit)+" in "+v, v+" not in "+quote(lit))
		}
	}
	atoms = append(atoms, `extra == "css"`, `extra != "Docs_X"`, `"css" == extra`, `extra == "docs.x"`,
		`"css" in extras`, `"docs" not in extras`, `"docs-x" in extras`)
	return atoms
}

// randomMarker joins a few atoms with and/or and parentheses.
func randomMarker(r *rand.Rand, atoms []string, depth int) string {
	if depth == 0 || r.IntN(3) == 0 {
		return atoms[r.IntN(len(atoms))]
	}
	n := 2 + r.IntN(2)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = randomMarker(r, atoms, depth-1)
		if r.IntN(2) == 0 {
			parts[i] = "(" + parts[i] + ")"
		}
	}
	op := []string{" and ", " or "}[r.IntN(2)]
	s := parts[0]
	for _, p := range parts[1:] {
		s += op + p
		if r.IntN(3) == 0 {
			op = []string{" and ", " or "}[r.IntN(2)]
		}
	}
	return s
}

func TestDifferentialMarkers(t *testing.T) {
	atoms := markerAtoms()
	r := rand.New(rand.NewPCG(1, 2))
	texts := slices.Clone(atoms)
	for range 300 {
		texts = append(texts, randomMarker(r, atoms, 3))
	}
	texts = append(texts, `os_name == "a" or`, `foo == "x"`, `(os_name == "posix"`, `os_name === "posix"`)
	extraSets := [][]string{nil, {"css"}, {"Docs.X", "css"}}
	var qs []query
	for i, s := range texts {
		m, err := ParseMarker(s)
		if err != nil {
			qs = append(qs, query{Op: "marker", S: s, Py: 12, Arch: "x86_64"})
			continue
		}
		for minor := 11; minor <= 14; minor++ {
			for _, arch := range []string{"x86_64", "aarch64"} {
				for _, ex := range extraSets {
					// Every target for single atoms, a sample for compounds.
					if i < len(atoms) || r.IntN(4) == 0 {
						qs = append(qs, query{Op: "marker", S: s, Canon: m.String(), Py: minor, Arch: arch, Extras: ex})
					}
				}
			}
		}
	}
	ans := askPackaging(t, qs)
	compared := 0
	for i, q := range qs {
		m, err := ParseMarker(q.S)
		if (err == nil) != ans[i].OK {
			t.Errorf("ParseMarker(%q) error = %v, packaging ok = %v", q.S, err, ans[i].OK)
			continue
		}
		if err != nil || ans[i].Err != "" {
			continue
		}
		got := m.Evaluate(LinuxCPython(q.Py, q.Arch), q.Extras)
		if got != ans[i].Val {
			t.Errorf("ParseMarker(%q).Evaluate(3.%d %s, %q) = %v, packaging %v", q.S, q.Py, q.Arch, q.Extras, got, ans[i].Val)
		}
		if ans[i].Canon != ans[i].Val {
			t.Errorf("packaging evaluates String() %q to %v but the original %q to %v (3.%d %s, %q)", q.Canon, ans[i].Canon, q.S, ans[i].Val, q.Py, q.Arch, q.Extras)
		}
		compared++
	}
	t.Logf("compared %d marker evaluations", compared)
	if compared < 1000 {
		t.Errorf("compared only %d marker evaluations, want at least 1000", compared)
	}
}

func TestDifferentialRequirements(t *testing.T) {
	names := []string{"Django", "zope.interface", "Foo__bar", "a", "pkg-", "_x"}
	extras := []string{"", "[x]", "[ B_c , x ]", "[]", "[a,]"}
	specs := []string{"", ">=1.0", " (>=1.0, <2)", "==2.*", "~=1.4.5", " !=1.1.*,>=1 ", "===odd", " >=1.0 (", "1.0"}
	urls := []string{" @ https://example.org/p-1.0.tar.gz", "@file:///src/p", " @ "}
	tails := []string{"", `; python_version < "3.12"`, ` ; extra == 'CSS_x' and os_name == "posix"`, ";", "; bogus == '1'"}
	r := rand.New(rand.NewPCG(3, 4))
	var qs []query
	for range 400 {
		s := names[r.IntN(len(names))] + extras[r.IntN(len(extras))]
		if r.IntN(4) == 0 {
			s += urls[r.IntN(len(urls))]
			if tail := tails[r.IntN(len(tails))]; tail != "" {
				s += " " + tail
			}
		} else {
			s += specs[r.IntN(len(specs))] + tails[r.IntN(len(tails))]
		}
		qs = append(qs, query{Op: "req", S: s})
	}
	ans := askPackaging(t, qs)
	for i, q := range qs {
		req, err := ParseRequirement(q.S)
		a := ans[i]
		if (err == nil) != a.OK {
			t.Errorf("ParseRequirement(%q) error = %v, packaging ok = %v", q.S, err, a.OK)
			continue
		}
		if err != nil {
			continue
		}
		wantSpecs, err := pep440.ParseSpecifiers(a.Spec)
		if err != nil {
			t.Fatalf("packaging specifiers %q: %v", a.Spec, err)
		}
		wantMarker := ""
		if a.Marker != "" {
			m, err := ParseMarker(a.Marker)
			if err != nil {
				t.Fatalf("packaging marker %q: %v", a.Marker, err)
			}
			wantMarker = m.String()
		}
		if a.Extras == nil {
			a.Extras = []string{}
		}
		gotExtras := append([]string{}, req.Extras...)
		if req.Name != a.Name || !slices.Equal(gotExtras, a.Extras) || req.Specifiers.String() != wantSpecs.String() ||
			req.URL != a.URL || req.Marker.String() != wantMarker {
			t.Errorf("ParseRequirement(%q) = {%q %q %q %q %q}, packaging {%q %q %q %q %q}", q.S,
				req.Name, req.Extras, req.Specifiers, req.URL, req.Marker,
				a.Name, a.Extras, wantSpecs, a.URL, wantMarker)
		}
		if again, err := ParseRequirement(req.String()); err != nil || again.String() != req.String() {
			t.Errorf("ParseRequirement(%q).String() = %q, which parses to %q, %v", q.S, req.String(), again.String(), err)
		}
	}
	if !slices.ContainsFunc(ans, func(a answer) bool { return a.OK }) || !slices.ContainsFunc(ans, func(a answer) bool { return !a.OK }) {
		t.Errorf("generated requirements were all valid or all invalid; the generator is too narrow")
	}
}
