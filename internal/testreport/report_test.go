package main

import (
	"strings"
	"testing"
)

// stream is go test -json of two packages, as cmd/test2json writes it: a
// pass, a listed skip, an unlisted skip of a subtest, and a failure.
const stream = `{"Time":"2026-12-05T01:00:00Z","Action":"start","Package":"example.com/m/a"}
{"Time":"2026-12-05T01:00:00Z","Action":"run","Package":"example.com/m/a","Test":"TestPass"}
{"Time":"2026-12-05T01:00:00Z","Action":"output","Package":"example.com/m/a","Test":"TestPass","Output":"=== RUN   TestPass\n"}
{"Time":"2026-12-05T01:00:00Z","Action":"output","Package":"example.com/m/a","Test":"TestPass","Output":"    a_test.go:9: chatter of a passing test\n"}
{"Time":"2026-12-05T01:00:00Z","Action":"output","Package":"example.com/m/a","Test":"TestPass","Output":"--- PASS: TestPass (0.00s)\n"}
{"Time":"2026-12-05T01:00:00Z","Action":"pass","Package":"example.com/m/a","Test":"TestPass","Elapsed":0}
{"Time":"2026-12-05T01:00:00Z","Action":"run","Package":"example.com/m/a","Test":"TestHelper"}
{"Time":"2026-12-05T01:00:00Z","Action":"output","Package":"example.com/m/a","Test":"TestHelper","Output":"=== RUN   TestHelper\n"}
{"Time":"2026-12-05T01:00:00Z","Action":"output","Package":"example.com/m/a","Test":"TestHelper","Output":"    a_test.go:20: helper; runs only when re-executed\n"}
{"Time":"2026-12-05T01:00:00Z","Action":"output","Package":"example.com/m/a","Test":"TestHelper","Output":"--- SKIP: TestHelper (0.00s)\n"}
{"Time":"2026-12-05T01:00:00Z","Action":"skip","Package":"example.com/m/a","Test":"TestHelper","Elapsed":0}
{"Time":"2026-12-05T01:00:00Z","Action":"output","Package":"example.com/m/a","Output":"PASS\n"}
{"Time":"2026-12-05T01:00:01Z","Action":"output","Package":"example.com/m/a","Output":"ok  \texample.com/m/a\t1.0s\n"}
{"Time":"2026-12-05T01:00:01Z","Action":"pass","Package":"example.com/m/a","Elapsed":1}
{"Time":"2026-12-05T01:00:01Z","Action":"start","Package":"example.com/m/b/c"}
{"Time":"2026-12-05T01:00:01Z","Action":"run","Package":"example.com/m/b/c","Test":"TestMirror"}
{"Time":"2026-12-05T01:00:01Z","Action":"output","Package":"example.com/m/b/c","Test":"TestMirror","Output":"=== RUN   TestMirror\n"}
{"Time":"2026-12-05T01:00:01Z","Action":"run","Package":"example.com/m/b/c","Test":"TestMirror/0.11.0"}
{"Time":"2026-12-05T01:00:01Z","Action":"output","Package":"example.com/m/b/c","Test":"TestMirror/0.11.0","Output":"=== RUN   TestMirror/0.11.0\n"}
{"Time":"2026-12-05T01:00:01Z","Action":"output","Package":"example.com/m/b/c","Test":"TestMirror/0.11.0","Output":"    c_test.go:5: BITPOLL_MIRROR is not set:\n"}
{"Time":"2026-12-05T01:00:01Z","Action":"output","Package":"example.com/m/b/c","Test":"TestMirror/0.11.0","Output":"        point it at a mirror\n"}
{"Time":"2026-12-05T01:00:01Z","Action":"output","Package":"example.com/m/b/c","Test":"TestMirror/0.11.0","Output":"    --- SKIP: TestMirror/0.11.0 (0.00s)\n"}
{"Time":"2026-12-05T01:00:01Z","Action":"skip","Package":"example.com/m/b/c","Test":"TestMirror/0.11.0","Elapsed":0}
{"Time":"2026-12-05T01:00:01Z","Action":"output","Package":"example.com/m/b/c","Test":"TestMirror","Output":"--- PASS: TestMirror (0.00s)\n"}
{"Time":"2026-12-05T01:00:01Z","Action":"pass","Package":"example.com/m/b/c","Test":"TestMirror","Elapsed":0}
{"Time":"2026-12-05T01:00:01Z","Action":"run","Package":"example.com/m/b/c","Test":"TestBroken"}
{"Time":"2026-12-05T01:00:01Z","Action":"output","Package":"example.com/m/b/c","Test":"TestBroken","Output":"=== RUN   TestBroken\n"}
{"Time":"2026-12-05T01:00:01Z","Action":"output","Package":"example.com/m/b/c","Test":"TestBroken","Output":"    c_test.go:30: F(1) = 2, want 3\n"}
{"Time":"2026-12-05T01:00:01Z","Action":"output","Package":"example.com/m/b/c","Test":"TestBroken","Output":"--- FAIL: TestBroken (0.00s)\n"}
{"Time":"2026-12-05T01:00:01Z","Action":"fail","Package":"example.com/m/b/c","Test":"TestBroken","Elapsed":0}
{"Time":"2026-12-05T01:00:01Z","Action":"output","Package":"example.com/m/b/c","Output":"FAIL\n"}
{"Time":"2026-12-05T01:01:40Z","Action":"output","Package":"example.com/m/b/c","Output":"FAIL\texample.com/m/b/c\t0.5s\n"}
{"Time":"2026-12-05T01:01:40Z","Action":"fail","Package":"example.com/m/b/c","Elapsed":0.5}
`

func run(t *testing.T, in string, list string, ci bool) (string, bool) {
	t.Helper()
	intended, err := parseIntended("skips", []byte(list))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	r := newReport(&out, intended)
	for _, l := range strings.Split(strings.TrimRight(in, "\n"), "\n") {
		r.line(l)
	}
	ok := r.finish(ci, "skips")
	return out.String(), ok
}

func TestReport(t *testing.T) {
	out, ok := run(t, stream, "a TestHelper: re-executed by its test\n", false)
	if ok {
		t.Errorf("finish = true, want false: TestBroken failed")
	}
	for _, want := range []string{
		"ok  \texample.com/m/a\t1.0s\n",
		"    c_test.go:30: F(1) = 2, want 3\n--- FAIL: TestBroken (0.00s)\n",
		"FAIL\texample.com/m/b/c\t0.5s\n",
		"skip: example.com/m/a TestHelper: helper; runs only when re-executed (intended: skips:1)\n",
		"skip: example.com/m/b/c TestMirror/0.11.0: BITPOLL_MIRROR is not set: point it at a mirror (NOT listed in skips)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q; output:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"chatter of a passing test", "PASS\n"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("output has %q, which a plain go test leaves out; output:\n%s", unwanted, out)
		}
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	const wantLast = "summary: 5 tests ran in 2 packages: 2 passed, 1 failed, 2 skipped (1 intended; 1 unlisted, because: BITPOLL_MIRROR is not set: point it at a mirror); FAILED packages: 1; 1m40s"
	if last := lines[len(lines)-1]; last != wantLast {
		t.Errorf("last line = %q, want %q", last, wantLast)
	}
}

func TestReportCI(t *testing.T) {
	// Only package a: a pass and a skip.
	var a []string
	for _, l := range strings.Split(stream, "\n") {
		if strings.Contains(l, `"example.com/m/a"`) {
			a = append(a, l)
		}
	}
	in := strings.Join(a, "\n")
	for _, c := range []struct {
		list   string
		ci     bool
		wantOK bool
	}{
		{"", false, true},
		{"", true, false},
		{"a TestHelper: re-executed\n", true, true},
		{"m/a TestHelp*: re-executed\n", true, true},
		{"b TestHelper: another package\n", true, false},
	} {
		out, ok := run(t, in, c.list, c.ci)
		if ok != c.wantOK {
			t.Errorf("list %q, ci %v: finish = %v, want %v; output:\n%s", c.list, c.ci, ok, c.wantOK, out)
		}
		if !c.wantOK && !strings.Contains(out, "CI: 1 skips are neither fixed nor listed in skips") {
			t.Errorf("list %q, ci %v: output does not say which skips fail CI:\n%s", c.list, c.ci, out)
		}
	}
}

func TestReportBuildFailure(t *testing.T) {
	in := `{"ImportPath":"example.com/m/d [example.com/m/d.test]","Action":"build-output","Output":"d/d_test.go:3:1: syntax error\n"}
{"ImportPath":"example.com/m/d [example.com/m/d.test]","Action":"build-fail"}
{"Time":"2026-12-05T01:00:00Z","Action":"start","Package":"example.com/m/d"}
{"Time":"2026-12-05T01:00:00Z","Action":"output","Package":"example.com/m/d","Output":"FAIL\texample.com/m/d [build failed]\n"}
{"Time":"2026-12-05T01:00:00Z","Action":"fail","Package":"example.com/m/d","Elapsed":0,"FailedBuild":"example.com/m/d [example.com/m/d.test]"}
go: some message of the go command`
	out, ok := run(t, in, "", false)
	if ok {
		t.Errorf("finish = true, want false for a build failure")
	}
	for _, want := range []string{"d/d_test.go:3:1: syntax error\n", "FAIL\texample.com/m/d [build failed]\n", "go: some message of the go command\n", "0 tests ran in 1 packages"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q; output:\n%s", want, out)
		}
	}
}

// A test binary that dies (panic, timeout) ends no test: their output must
// still be shown.
func TestReportUnfinished(t *testing.T) {
	in := `{"Action":"run","Package":"p","Test":"TestHang"}
{"Action":"output","Package":"p","Test":"TestHang","Output":"=== RUN   TestHang\n"}
{"Action":"output","Package":"p","Test":"TestHang","Output":"panic: test timed out after 1s\n"}
{"Action":"output","Package":"p","Output":"FAIL\tp\t1.0s\n"}
{"Action":"fail","Package":"p","Elapsed":1}`
	out, ok := run(t, in, "", false)
	if ok || !strings.Contains(out, "panic: test timed out after 1s\n") {
		t.Errorf("finish = %v, output:\n%s\nwant false and the panic shown", ok, out)
	}
}

func TestParseIntended(t *testing.T) {
	for _, c := range []struct{ in, wantErr string }{
		{"# comment\n\nstore TestHelperProcess: helper\n", ""},
		{"store TestHelperProcess\n", `skips:1: "store TestHelperProcess" is not "PACKAGE TEST: REASON"`},
		{"\nstore: no test\n", `skips:2: "store: no test" is not`},
		{"store Test[x: bad pattern\n", `skips:1: test pattern "Test[x"`},
	} {
		_, err := parseIntended("skips", []byte(c.in))
		if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("parseIntended(%q) = %v, want error containing %q", c.in, err, c.wantErr)
		}
	}
}
