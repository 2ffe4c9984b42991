package lockfile

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"
)

var update = flag.Bool("update", false, "rewrite the want.lock files of testdata/format")

// archive is a txtar test case: a comment, then "-- name --"
// sections.
type archive struct {
	comment string
	files   map[string]string
}

func readArchive(t *testing.T, path string) archive {
	t.Helper()
	ar, err := txtar.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a := archive{comment: string(ar.Comment), files: map[string]string{}}
	for _, f := range ar.Files {
		a.files[f.Name] = string(f.Data)
	}
	return a
}

// TestParseErrors runs testdata/parse/*.txtar: each holds bitpoll.lock and,
// in its comment, "err: " lines that must each be one line of the error,
// exactly; with no err lines the lock must parse.
func TestParseErrors(t *testing.T) {
	paths, _ := filepath.Glob("testdata/parse/*.txtar")
	if len(paths) == 0 {
		t.Fatal("no test cases in testdata/parse")
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			a := readArchive(t, path)
			var want []string
			for _, line := range strings.Split(a.comment, "\n") {
				if e, ok := strings.CutPrefix(line, "err: "); ok {
					want = append(want, e)
				}
			}
			in, ok := a.files["bitpoll.lock"]
			if !ok {
				t.Fatalf("%s has no bitpoll.lock section", path)
			}
			_, err := Parse([]byte(in), "bitpoll.lock")
			if len(want) == 0 {
				if err != nil {
					t.Fatalf("Parse() = %v, want no error", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse() = nil error, want %q", want)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("Parse() error is a %T, want an ErrorList", err)
			}
			got := strings.Split(err.Error(), "\n")
			for _, w := range want {
				found := false
				for _, g := range got {
					found = found || g == w
				}
				if !found {
					t.Errorf("Parse() errors lack %q; got:\n%s", w, err)
				}
			}
			if len(got) != len(want) {
				t.Errorf("Parse() gave %d errors, want %d:\n%s", len(got), len(want), err)
			}
		})
	}
}

// TestFormat runs testdata/format/*.txtar: Format(Parse(bitpoll.lock)) must
// equal want.lock, and formatting that again must not change it.
func TestFormat(t *testing.T) {
	paths, _ := filepath.Glob("testdata/format/*.txtar")
	if len(paths) == 0 {
		t.Fatal("no test cases in testdata/format")
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			a := readArchive(t, path)
			l, err := Parse([]byte(a.files["bitpoll.lock"]), "bitpoll.lock")
			if err != nil {
				t.Fatalf("Parse(bitpoll.lock) = %v", err)
			}
			got, err := Format(l)
			if err != nil {
				t.Fatalf("Format() = %v", err)
			}
			if *update {
				out := "-- bitpoll.lock --\n" + a.files["bitpoll.lock"] + "-- want.lock --\n" + string(got)
				if err := os.WriteFile(path, []byte(a.comment+out), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want := a.files["want.lock"]; string(got) != want {
				t.Errorf("Format() =\n%s\nwant\n%s", got, want)
			}
			l2, err := Parse(got, "want.lock")
			if err != nil {
				t.Fatalf("Parse(Format()) = %v", err)
			}
			again, err := Format(l2)
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("Format(Parse(Format())) = %s, %v; want it unchanged", again, err)
			}
		})
	}
}
