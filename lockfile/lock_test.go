package lockfile

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
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

// TestPackagesDigest: a formatted lock carries the digest of its packages,
// and a copy cut at any entry boundary, which is valid TOML and a valid
// lock otherwise, is refused at the digest's line.
func TestPackagesDigest(t *testing.T) {
	data, err := Format(validLock(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(data, "bitpoll.lock"); err != nil {
		t.Fatalf("Parse(Format(l)) = %v", err)
	}
	text := string(data)
	if !strings.Contains(text, "\npackages-digest = \"sha256:") {
		t.Fatalf("Format wrote no packages-digest:\n%s", text)
	}
	line := strings.Count(text[:strings.Index(text, "packages-digest")], "\n") + 1
	cuts := 0
	for _, boundary := range []string{"\n[[packages]]\n", "\n[[packages.wheels]]\n"} {
		for i := strings.Index(text, boundary); i >= 0; {
			cut := text[:i+1]
			cuts++
			_, err := Parse([]byte(cut), "bitpoll.lock")
			want := fmt.Sprintf("bitpoll.lock:%d: app.packages-digest:", line)
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "re-lock") {
				t.Errorf("Parse(lock cut before byte %d) = %v, want an error containing %q", i, err, want)
			}
			next := strings.Index(text[i+1:], boundary)
			if next < 0 {
				break
			}
			i += 1 + next
		}
	}
	if cuts < 3 {
		t.Errorf("only %d cut points tried", cuts)
	}
	// A lock without the field (an older writer's) is still read.
	old := strings.Replace(text, text[strings.Index(text, "packages-digest"):strings.Index(text, "packages-digest")+len("packages-digest = \"sha256:")+64+2], "", 1)
	if _, err := Parse([]byte(old), "bitpoll.lock"); err != nil {
		t.Errorf("Parse(lock without packages-digest) = %v, want it accepted", err)
	}
}

// TestDigestCoversSdistTargets: the marking of which targets build an sdist
// is part of the packages digest, so an edit of sdist-targets alone is
// refused offline; a lock without the field keeps the digest it always had
// (the canonical format case, written before the field existed, still
// formats byte for byte).
func TestDigestCoversSdistTargets(t *testing.T) {
	a := readArchive(t, "testdata/format/sdist_targets.txtar")
	text := a.files["want.lock"]
	if _, err := Parse([]byte(text), "bitpoll.lock"); err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(text, `sdist-targets = ["cp313-aarch64"]`, `sdist-targets = ["cp313-aarch64", "cp313-aarch64"]`, 1)
	if edited == text {
		t.Fatal("the format case has no sdist-targets line")
	}
	_, err := Parse([]byte(edited), "bitpoll.lock")
	if err == nil || !strings.Contains(err.Error(), "app.packages-digest:") {
		t.Errorf("Parse(lock with sdist-targets edited) = %v, want a packages-digest mismatch", err)
	}
	l := &Lock{Packages: []Package{{Name: "x", Version: "1", Sdist: &File{SHA256: "aa"}, Wheels: []File{{SHA256: "bb"}}}}}
	before := l.Digest()
	l.Packages[0].SdistTargets = []string{"cp313-aarch64"}
	if l.Digest() == before {
		t.Errorf("Digest() did not change when sdist-targets was set")
	}
}
