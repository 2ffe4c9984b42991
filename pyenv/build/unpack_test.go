package build

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testarchive"
	"github.com/bitpoll-install/bitpoll-install/safearchive"
)

// unpackCase is one file of testdata/unpack: header lines "want: ok" or
// "want: <error substring>", optional "formats: tar zip", "max-files: N",
// "max-size: N" and "max-ratio: N", then "--" and one member per line:
//
//	d NAME/          directory
//	f NAME BODY      file (x: executable file)
//	l NAME -> TARGET symbolic link
//	h NAME -> TARGET hard link (tar only)
type unpackCase struct {
	want     string
	formats  []string
	maxFiles int
	maxSize  int64
	maxRatio int64
	members  []testarchive.Member
}

func readUnpackCase(t testing.TB, path string) unpackCase {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := unpackCase{formats: []string{"tar", "zip"}, maxFiles: safearchive.DefaultFiles, maxSize: safearchive.DefaultCeiling}
	head, body, ok := strings.Cut(string(data), "\n--\n")
	if !ok {
		t.Fatalf("%s: no \"--\" line between header and members", path)
	}
	for _, line := range strings.Split(head, "\n") {
		k, v, _ := strings.Cut(line, ": ")
		switch k {
		case "want":
			c.want = v
		case "formats":
			c.formats = strings.Fields(v)
		case "max-files":
			c.maxFiles, err = strconv.Atoi(v)
		case "max-size":
			c.maxSize, err = strconv.ParseInt(v, 10, 64)
		case "max-ratio":
			c.maxRatio, err = strconv.ParseInt(v, 10, 64)
		default:
			if !strings.HasPrefix(line, "#") {
				t.Fatalf("%s: unknown header line %q", path, line)
			}
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		kind, rest, _ := strings.Cut(line, " ")
		var m testarchive.Member
		switch kind {
		case "d":
			m.Name, m.Dir = rest, true
		case "f":
			m.Name, m.Body, _ = strings.Cut(rest, " ")
		case "x":
			m.Name, m.Body, _ = strings.Cut(rest, " ")
			m.Mode = 0o755
		case "l":
			m.Name, m.Symlink, _ = strings.Cut(rest, " -> ")
		case "h":
			m.Name, m.Hardlink, _ = strings.Cut(rest, " -> ")
		default:
			t.Fatalf("%s: unknown member line %q", path, line)
		}
		c.members = append(c.members, m)
	}
	if c.want == "" {
		t.Fatalf("%s: no want line", path)
	}
	return c
}

func TestUnpackSdist(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "unpack", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test cases in testdata/unpack: %v", err)
	}
	for _, file := range files {
		c := readUnpackCase(t, file)
		for _, format := range c.formats {
			name := strings.TrimSuffix(filepath.Base(file), ".txt") + "/" + format
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				archive := filepath.Join(dir, "sdist")
				data := testarchive.TarGz(t, c.members...)
				if format == "zip" {
					data = testarchive.Zip(t, c.members...)
				}
				if err := os.WriteFile(archive, data, 0o644); err != nil {
					t.Fatal(err)
				}
				dst := filepath.Join(dir, "out", "dst")
				if err := os.MkdirAll(dst, 0o755); err != nil {
					t.Fatal(err)
				}
				top, err := unpackSdist(archive, dst, safearchive.Limits{Ratio: c.maxRatio, Ceiling: c.maxSize, Files: c.maxFiles})
				// Whatever happens, nothing may appear beside dst.
				if ents, _ := os.ReadDir(filepath.Dir(dst)); len(ents) != 1 {
					t.Errorf("unpack wrote beside its target directory: %v", ents)
				}
				if c.want != "ok" {
					if err == nil || !strings.Contains(err.Error(), c.want) {
						t.Fatalf("unpackSdist(%s) = %v, want error containing %q", name, err, c.want)
					}
					return
				}
				if err != nil {
					t.Fatalf("unpackSdist(%s) = %v, want success", name, err)
				}
				checkUnpacked(t, dst, top, c.members, format == "zip")
			})
		}
	}
}

// checkUnpacked checks that every member of a valid archive is on disk as
// described.
func checkUnpacked(t *testing.T, dst, top string, ms []testarchive.Member, zip bool) {
	t.Helper()
	if filepath.Dir(top) != dst {
		t.Errorf("top directory = %q, want one directly in %q", top, dst)
	}
	for _, m := range ms {
		if m.Hardlink != "" && zip {
			continue // a zip leaves hard links out
		}
		p := filepath.Join(dst, filepath.FromSlash(strings.TrimPrefix(m.Name, "./")))
		fi, err := os.Lstat(p)
		if err != nil {
			t.Errorf("member %q: %v", m.Name, err)
			continue
		}
		switch {
		case m.Dir:
			if !fi.IsDir() {
				t.Errorf("member %q has mode %v, want a directory", m.Name, fi.Mode())
			}
		case m.Symlink != "":
			if got, err := os.Readlink(p); err != nil || got != m.Symlink {
				t.Errorf("link %q points at %q (%v), want %q", m.Name, got, err, m.Symlink)
			}
		case m.Hardlink != "":
			want, _ := os.ReadFile(filepath.Join(dst, filepath.FromSlash(m.Hardlink)))
			if got, err := os.ReadFile(p); err != nil || string(got) != string(want) {
				t.Errorf("hard link %q holds %q (%v), want %q", m.Name, got, err, want)
			}
		default:
			wantMode := fs.FileMode(0o644)
			if m.Mode == 0o755 {
				wantMode = 0o755
			}
			got, err := os.ReadFile(p)
			if err != nil || string(got) != m.Body || fi.Mode() != wantMode {
				t.Errorf("file %q holds %q with mode %v (%v), want %q with mode %v", m.Name, got, fi.Mode(), err, m.Body, wantMode)
			}
		}
	}
}

func TestUnpackSdistNotAnArchive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.tar.gz")
	if err := os.WriteFile(path, []byte("plain text"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := unpackSdist(path, t.TempDir(), safearchive.Limits{})
	if err == nil || !strings.Contains(err.Error(), "neither a .zip nor a .tar, .tar.gz or .tar.bz2") {
		t.Errorf("unpackSdist(text file) = %v, want an error naming the accepted formats", err)
	}
}

// FuzzUnpackSdist feeds arbitrary archives to the extractor: it must never
// panic, write outside its directory, or leave a link that resolves
// outside it.
func FuzzUnpackSdist(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "unpack", "*.txt"))
	for _, file := range files {
		c := readUnpackCase(f, file)
		f.Add(testarchive.TarGz(f, c.members...))
		f.Add(testarchive.Zip(f, c.members...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		archive := filepath.Join(dir, "sdist")
		if err := os.WriteFile(archive, data, 0o644); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, "out", "dst")
		if err := os.MkdirAll(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		top, err := unpackSdist(archive, dst, safearchive.Limits{Ceiling: 1 << 20, Files: 1000})
		if ents, _ := os.ReadDir(filepath.Dir(dst)); len(ents) != 1 {
			t.Fatalf("unpack wrote beside its target directory: %v", ents)
		}
		if err == nil {
			if fi, serr := os.Lstat(top); serr != nil || !fi.IsDir() || filepath.Dir(top) != dst {
				t.Fatalf("unpack succeeded with top %q (%v), want a directory in %q", top, serr, dst)
			}
		}
		root, _ := filepath.EvalSymlinks(dst)
		filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.Type()&fs.ModeSymlink == 0 {
				return nil
			}
			if r, err := filepath.EvalSymlinks(p); err == nil && r != root && !strings.HasPrefix(r, root+"/") {
				t.Fatalf("link %q resolves to %q, outside %q", p, r, root)
			}
			return nil
		})
	})
}
