package pep440

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
)

// query is one question for testdata/differential.py; answer is its reply.
type query struct {
	Op  string `json:"op"`
	S   string `json:"s,omitempty"`
	A   string `json:"a,omitempty"`
	B   string `json:"b,omitempty"`
	V   string `json:"v,omitempty"`
	Pre bool   `json:"pre,omitempty"`
}

type answer struct {
	OK   bool   `json:"ok"`
	Norm string `json:"norm"`
	Cmp  int    `json:"cmp"`
	In   bool   `json:"in"`
}

// askPackaging sends all queries to the packaging library in one python3
// process, skipping the test when python3 or packaging >= 26 is missing.
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

// diffVersions are the seeds for ordering and containment: every segment
// kind, trailing zeros, epochs and local labels.
var diffVersions = []string{
	"0", "0.dev0", "0.1", "1.0.dev0", "1.0.dev1", "1.0a0.dev0", "1.0a1", "1.0a1.post1", "1.0a1.post1.dev1",
	"1.0a2", "1.0b1", "1.0rc1", "1.0rc1.dev3", "1.0", "1.0.0", "1.0+local", "1.0+1", "1.0+abc.5", "1.0+abc.05x",
	"1.0.post0", "1.0.post1.dev0", "1.0.post1", "1.0.post1+x", "1.0.post2", "1.0.1", "1.0.1a1", "1.1.dev0",
	"1.1", "1.2.3", "1.4.5", "1.4.5a1", "1.4.6", "1.5", "1.5.dev0", "2", "2.0.0.0.1", "2.9.0.post0",
	"3.11", "3.12.0rc2", "3.13", "1!0.1", "1!1.0", "1!1.0+x", "10.0", "2024.1.1",
}

// diffSpellings exercise the lenient spellings of Parse.
var diffSpellings = []string{
	"v1.0", "V1.0", " 1.0 ", "1.0-alpha.1", "1.0ALPHA", "1.0beta2", "1.0c3", "1.0pre4", "1.0preview5",
	"1.0-r", "1.0rev6", "1.0_post_7", "1.0-7", "1.0.dev", "1.0-dev-8", "1.0a.dev", "1.0+UBUNTU-1",
	"1.0+0007", "1..0", "1.0.", ".1", "1.0a1a2", "1.0+", "1.0+a..b", "01.002", "1!", "!1", "1.0-",
	"1.0a-", "1.0.post.dev", "1.0-1-1", "1.0-a1", "1.0-post1", "1.0.*", "1.0 a1", "a1", "1.0rc",
	"1.0dev", "1.0r", "1.0a_1", "1.0post", "1.0-rc-1-dev-2", "1.0e", "2!3.4.5a6.post7.dev8+9.x",
	"1.0.ab", "1.0-dev", "1.0-1.dev2", "1.0a1-1", "1.0+a.-b",
}

func TestDifferentialVersions(t *testing.T) {
	var qs []query
	for _, s := range append(append([]string{}, diffVersions...), diffSpellings...) {
		qs = append(qs, query{Op: "parse", S: s})
	}
	nParse := len(qs)
	for _, a := range diffVersions {
		for _, b := range diffVersions {
			qs = append(qs, query{Op: "cmp", A: a, B: b})
		}
	}
	ans := askPackaging(t, qs)
	for i, q := range qs[:nParse] {
		v, err := Parse(q.S)
		if (err == nil) != ans[i].OK {
			t.Errorf("Parse(%q) error = %v, packaging ok = %v", q.S, err, ans[i].OK)
			continue
		}
		if err == nil && v.String() != ans[i].Norm {
			t.Errorf("Parse(%q).String() = %q, packaging %q", q.S, v.String(), ans[i].Norm)
		}
	}
	for i, q := range qs[nParse:] {
		got := MustParse(q.A).Compare(MustParse(q.B))
		if want := ans[nParse+i].Cmp; got != want {
			t.Errorf("MustParse(%q).Compare(%q) = %d, packaging %d", q.A, q.B, got, want)
		}
	}
}

// diffSpecifiers builds clauses from every operator and a subset of the
// seed versions, keeping only combinations PEP 440 allows.
func diffSpecifiers() []string {
	specs := []string{"", ">=1.0, <2", "==1.*", "!=1.0.*", "==1.0.*", "~=1.4.5", "~=1.4", "~=1.0a1", "===1.0",
		"===1.0+local", ">=1.0a1,<1.1", "!=1.0,>=1.0", "==1!1.*", "~=2.2.post3", ">1.0.post1", "<1.0.post1",
		">1.0a1", "<1.0rc1", ">1.0.dev0", "<=1.0", "== 1.0+local", "==1.0.0", "!=1.0+local", ">= 1.0 , < 1.5 , != 1.4.*"}
	ops := []string{"==", "!=", "<", "<=", ">", ">=", "~="}
	for i, v := range diffVersions {
		if i%3 != 0 {
			continue
		}
		for _, op := range ops {
			specs = append(specs, op+v)
		}
		specs = append(specs, "=="+v+".*")
	}
	return specs
}

func TestDifferentialSpecifiers(t *testing.T) {
	specs := diffSpecifiers()
	var qs []query
	for _, s := range specs {
		qs = append(qs, query{Op: "specs", S: s})
	}
	ans := askPackaging(t, qs)
	var valid []string
	for i, s := range specs {
		ss, err := ParseSpecifiers(s)
		if (err == nil) != ans[i].OK {
			t.Errorf("ParseSpecifiers(%q) error = %v, packaging ok = %v", s, err, ans[i].OK)
			continue
		}
		if err == nil {
			valid = append(valid, s)
			// packaging keeps the spelling of each version; compare only
			// lists that are already canonical.
			if n := ans[i].Norm; n == s && ss.String() != n {
				t.Errorf("ParseSpecifiers(%q).String() = %q, packaging %q", s, ss.String(), n)
			}
		}
	}
	qs = qs[:0]
	for _, s := range valid {
		for _, v := range diffVersions {
			for _, pre := range []bool{false, true} {
				qs = append(qs, query{Op: "contains", S: s, V: v, Pre: pre})
			}
		}
	}
	ans = askPackaging(t, qs)
	for i, q := range qs {
		ss, _ := ParseSpecifiers(q.S)
		if got := ss.Contains(MustParse(q.V), q.Pre); got != ans[i].In {
			t.Errorf("ParseSpecifiers(%q).Contains(%q, %v) = %v, packaging %v", q.S, q.V, q.Pre, got, ans[i].In)
		}
	}
	if len(qs) < 300 {
		t.Errorf("only %d containment queries; the seeds shrank", len(qs))
	}
}
