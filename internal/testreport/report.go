// Command testreport reads `go test -json` on its standard input and
// prints what a plain `go test` prints: the output of failed tests and each
// package's closing line (ok, FAIL, no test files). It then lists every
// skipped test with its reason and ends with one line that counts the tests
// that ran, passed, failed and were skipped, and says why they skipped.
//
// A skip is intended when the file given by -intended lists it; see
// .ci/intended-skips for the format. With -ci (the default when $CI is
// true) an unlisted skip fails the run, as does any failed test or package.
//
//	go test -json ./... | go run ./internal/testreport -intended .ci/intended-skips
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// event is one line of `go test -json` (cmd/test2json), with the build
// events of Go 1.24 and later.
type event struct {
	Time       time.Time
	Action     string
	Package    string
	Test       string
	Elapsed    float64
	Output     string
	ImportPath string
}

// intended is one entry of the list of skips that are meant to happen.
type intended struct {
	pkg, test, reason string
	line              int
}

// skip is one skipped test.
type skip struct {
	pkg, test, reason string
	intended          *intended // nil when the list does not name it
}

// report follows one `go test -json` stream.
type report struct {
	w        io.Writer
	intended []intended
	running  map[string][]string // buffered output of a running test, by pkg+"\x00"+test
	passed   int
	failed   int
	skipped  []skip
	pkgs     map[string]bool
	failPkgs map[string]bool
	first    time.Time
	last     time.Time
}

func newReport(w io.Writer, in []intended) *report {
	return &report{w: w, intended: in, running: map[string][]string{}, pkgs: map[string]bool{}, failPkgs: map[string]bool{}}
}

// line handles one line of input. Lines that are not events (the go
// command's own messages) are printed as they are.
func (r *report) line(s string) {
	var e event
	if !strings.HasPrefix(s, "{") || json.Unmarshal([]byte(s), &e) != nil || e.Action == "" {
		fmt.Fprintln(r.w, s)
		return
	}
	if !e.Time.IsZero() {
		if r.first.IsZero() {
			r.first = e.Time
		}
		r.last = e.Time
	}
	switch e.Action {
	case "build-output":
		fmt.Fprint(r.w, e.Output)
		return
	case "build-fail":
		r.failPkgs[e.ImportPath] = true
		return
	}
	if e.Package != "" {
		r.pkgs[e.Package] = true
	}
	if e.Test == "" {
		r.packageEvent(e)
		return
	}
	key := e.Package + "\x00" + e.Test
	switch e.Action {
	case "output":
		r.running[key] = append(r.running[key], e.Output)
	case "pass":
		r.passed++
		delete(r.running, key)
	case "fail":
		r.failed++
		r.flush(key)
	case "skip":
		r.skipped = append(r.skipped, r.newSkip(e.Package, e.Test, r.running[key]))
		delete(r.running, key)
	}
}

func (r *report) packageEvent(e event) {
	switch e.Action {
	case "output":
		// A plain go test prints no PASS line for a passing package.
		if e.Output != "PASS\n" {
			fmt.Fprint(r.w, e.Output)
		}
	case "fail":
		r.failPkgs[e.Package] = true
		// Tests that never ended (a panic, the timeout) show their output.
		var keys []string
		for k := range r.running {
			if strings.HasPrefix(k, e.Package+"\x00") {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			r.flush(k)
		}
	}
}

func (r *report) flush(key string) {
	for _, o := range r.running[key] {
		fmt.Fprint(r.w, o)
	}
	delete(r.running, key)
}

// logLine is the start of a t.Log or t.Skip line in verbose output.
var logLine = regexp.MustCompile(`^ {4}\S+\.go:\d+: `)

// skipReason is the message of the test's last log call, which for a
// skipped test is the one of t.Skip.
func skipReason(out []string) string {
	start := -1
	for i, o := range out {
		if logLine.MatchString(o) {
			start = i
		}
	}
	if start < 0 {
		return "no reason given"
	}
	var b strings.Builder
	for i, o := range out[start:] {
		if t := strings.TrimSpace(o); strings.HasPrefix(t, "--- ") || strings.HasPrefix(t, "=== ") {
			break
		}
		if i == 0 {
			o = logLine.ReplaceAllString(o, "")
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strings.TrimSpace(o))
	}
	return b.String()
}

func (r *report) newSkip(pkg, test string, out []string) skip {
	s := skip{pkg: pkg, test: test, reason: skipReason(out)}
	for i := range r.intended {
		in := &r.intended[i]
		if (pkg == in.pkg || strings.HasSuffix(pkg, "/"+in.pkg)) && matchTest(in.test, test) {
			s.intended = in
			break
		}
	}
	return s
}

// matchTest matches a test name against a pattern of path.Match, element
// by element of the subtest path.
func matchTest(pattern, name string) bool {
	ok, err := path.Match(pattern, name)
	return err == nil && ok
}

// parseIntended reads the list of intended skips: one per line,
// "PACKAGE TEST: REASON", where PACKAGE is the package's path inside the
// module and TEST a test name, or a pattern of path.Match for subtests.
// Blank lines and lines starting with # are comments.
func parseIntended(name string, data []byte) ([]intended, error) {
	var list []intended
	for i, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		head, reason, ok := strings.Cut(l, ": ")
		pkg, test, ok2 := strings.Cut(head, " ")
		test = strings.TrimSpace(test)
		reason = strings.TrimSpace(reason)
		if !ok || !ok2 || pkg == "" || test == "" || reason == "" {
			return nil, fmt.Errorf("%s:%d: %q is not \"PACKAGE TEST: REASON\" (for example \"store TestHelperProcess: runs only when re-executed\")", name, i+1, l)
		}
		if _, err := path.Match(test, ""); err != nil {
			return nil, fmt.Errorf("%s:%d: test pattern %q: %v", name, i+1, test, err)
		}
		list = append(list, intended{pkg: pkg, test: test, reason: reason, line: i + 1})
	}
	return list, nil
}

// finish prints the skips and the summary line, and reports whether the
// run passed: no failed test or package and, under ci, no unlisted skip.
func (r *report) finish(ci bool, intendedFile string) bool {
	// Output of tests that never ended, in a stream cut short.
	var keys []string
	for k := range r.running {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		r.flush(k)
	}

	unlisted := 0
	reasons := map[string]int{}
	var order []string
	for _, s := range r.skipped {
		tag := "intended: " + intendedFile + ":" + strconv.Itoa(lineOf(s.intended))
		if s.intended == nil {
			tag = "NOT listed in " + intendedFile
			unlisted++
			if reasons[s.reason] == 0 {
				order = append(order, s.reason)
			}
			reasons[s.reason]++
		}
		fmt.Fprintf(r.w, "skip: %s %s: %s (%s)\n", s.pkg, s.test, s.reason, tag)
	}

	var b strings.Builder
	ran := r.passed + r.failed + len(r.skipped)
	fmt.Fprintf(&b, "summary: %d tests ran in %d packages: %d passed, %d failed, %d skipped", ran, len(r.pkgs), r.passed, r.failed, len(r.skipped))
	if len(r.skipped) > 0 {
		fmt.Fprintf(&b, " (%d intended", len(r.skipped)-unlisted)
		if unlisted > 0 {
			fmt.Fprintf(&b, "; %d unlisted, because:", unlisted)
			for i, reason := range order {
				if i > 0 {
					b.WriteString(";")
				}
				fmt.Fprintf(&b, " %s", shorten(reason, 100))
				if n := reasons[reason]; n > 1 {
					fmt.Fprintf(&b, " (x%d)", n)
				}
			}
		}
		b.WriteString(")")
	}
	if n := len(r.failPkgs); n > 0 {
		fmt.Fprintf(&b, "; FAILED packages: %d", n)
	}
	if !r.first.IsZero() {
		fmt.Fprintf(&b, "; %s", r.last.Sub(r.first).Round(time.Second))
	}
	ok := r.failed == 0 && len(r.failPkgs) == 0
	if ci && unlisted > 0 {
		ok = false
		fmt.Fprintf(&b, "; CI: %d skips are neither fixed nor listed in %s", unlisted, intendedFile)
	}
	fmt.Fprintln(r.w, b.String())
	return ok
}

func lineOf(in *intended) int {
	if in == nil {
		return 0
	}
	return in.line
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func main() {
	ciDefault, _ := strconv.ParseBool(os.Getenv("CI"))
	ci := flag.Bool("ci", ciDefault, "fail the run on a skip that the -intended file does not list (default: $CI)")
	intendedFile := flag.String("intended", ".ci/intended-skips", "the list of intended skips")
	flag.Parse()

	data, err := os.ReadFile(*intendedFile)
	if err != nil && !os.IsNotExist(err) {
		fmt.Fprintf(os.Stderr, "testreport: %v\n", err)
		os.Exit(2)
	}
	list, err := parseIntended(*intendedFile, data)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testreport: %v\n", err)
		os.Exit(2)
	}
	r := newReport(os.Stdout, list)
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		r.line(sc.Text())
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "testreport: read go test -json: %v\n", err)
		os.Exit(2)
	}
	if !r.finish(*ci, *intendedFile) {
		os.Exit(1)
	}
}
