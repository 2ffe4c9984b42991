package safearchive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// entry is one member of a generated archive.
type entry struct {
	name string
	body string // a file's content
	zero int64  // or this many zero bytes
	link string // a symbolic link's target
	hard string // a hard link's target (tar only)
	dir  bool
}

func writeArchive(t *testing.T, format string, es []entry) string {
	t.Helper()
	var buf bytes.Buffer
	switch format {
	case "zip":
		zw := zip.NewWriter(&buf)
		for _, e := range es {
			h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
			switch {
			case e.dir:
				h.SetMode(fs.ModeDir | 0o755)
			case e.link != "":
				h.SetMode(fs.ModeSymlink | 0o777)
			default:
				h.SetMode(0o644)
			}
			w, err := zw.CreateHeader(h)
			if err != nil {
				t.Fatal(err)
			}
			body := io.Reader(strings.NewReader(e.body + e.link))
			if e.zero > 0 {
				body = io.LimitReader(zeros{}, e.zero)
			}
			if _, err := io.Copy(w, body); err != nil {
				t.Fatal(err)
			}
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	case "tar.gz":
		gw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(gw)
		for _, e := range es {
			h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body)) + e.zero}
			switch {
			case e.dir:
				h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
			case e.link != "":
				h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
			case e.hard != "":
				h.Typeflag, h.Linkname, h.Size = tar.TypeLink, e.hard, 0
			}
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			body := io.Reader(strings.NewReader(e.body))
			if e.zero > 0 {
				body = io.LimitReader(zeros{}, e.zero)
			}
			if _, err := io.Copy(tw, body); err != nil {
				t.Fatal(err)
			}
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := gw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(t.TempDir(), "archive."+format)
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestHostile: every hostile archive is refused with the policy's label
// (or a *LimitError), before Extract writes a byte.
func TestHostile(t *testing.T) {
	links := Policy{Symlinks: true, Hardlinks: true}
	for _, tc := range []struct {
		name    string
		es      []entry
		policy  Policy
		formats []string
		want    string
	}{
		{"dotdot", []entry{{name: "ok", body: "x"}, {name: "a/../../evil", body: "x"}}, Policy{}, nil, `escapes the archive with ".."`},
		{"absolute", []entry{{name: "/etc/evil", body: "x"}}, Policy{}, nil, "absolute path"},
		{"backslash", []entry{{name: `a\..\..\evil`, body: "x"}}, Policy{}, nil, "backslash"},
		{"symlink refused", []entry{{name: "l", link: "x"}}, Policy{}, nil, "only regular files and directories"},
		{"symlink absolute", []entry{{name: "l", link: "/etc/passwd"}}, links, nil, `links to "/etc/passwd"; want a relative path`},
		{"symlink escapes", []entry{{name: "a/l", link: "../../etc"}}, links, nil, "outside the archive"},
		{"symlink dotdot late", []entry{{name: "a/b/l", link: "x/../.."}}, links, nil, `".." may only start`},
		{"symlink escapes top", []entry{{name: "top/l", link: "../x"}}, Policy{Symlinks: true, OneTop: true}, nil, "outside its top directory"},
		{"write through link", []entry{{name: "d/", dir: true}, {name: "l", link: "d"}, {name: "l/evil", body: "x"}}, links, nil, `lies below "l", which is a symbolic link`},
		{"below a file", []entry{{name: "f", body: "x"}, {name: "f/g", body: "x"}}, Policy{}, nil, `lies below "f", which is a file`},
		{"duplicate", []entry{{name: "a", body: "x"}, {name: "a", body: "y"}}, Policy{}, nil, "appears twice"},
		{"duplicate dot-slash", []entry{{name: "a", body: "x"}, {name: "./a", body: "y"}}, Policy{DotSlash: true}, nil, "appears twice"},
		{"hard link refused", []entry{{name: "f", body: "x"}, {name: "h", hard: "f"}}, Policy{}, []string{"tar.gz"}, "only regular files and directories"},
		{"hard link outside", []entry{{name: "h", hard: "/etc/shadow"}}, links, []string{"tar.gz"}, `is a hard link to "/etc/shadow"`},
		{"hard link forward", []entry{{name: "h", hard: "f"}, {name: "f", body: "x"}}, links, []string{"tar.gz"}, "want an earlier regular file"},
		{"two tops", []entry{{name: "a/x", body: "x"}, {name: "b/y", body: "y"}}, Policy{OneTop: true}, nil, "lie in different top directories"},
	} {
		formats := tc.formats
		if formats == nil {
			formats = []string{"zip", "tar.gz"}
		}
		for _, format := range formats {
			t.Run(tc.name+"."+format, func(t *testing.T) {
				tc.policy.Label = errors.New("unsafe test")
				p := writeArchive(t, format, tc.es)
				dst := filepath.Join(t.TempDir(), "dst")
				err := Extract(p, dst, tc.policy)
				var me *MemberError
				if !errors.Is(err, tc.policy.Label) || !errors.As(err, &me) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Extract(%s) = %v, want a *MemberError labelled %q containing %q", tc.name, err, tc.policy.Label, tc.want)
				}
				if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("Extract(%s) made %s (%v), want nothing written", tc.name, dst, err)
				}
			})
		}
	}
}

// TestZipBomb: 64 MiB of zeros compress to a few KiB, far beyond the
// ratio; the bomb is refused before the first member is handed out, with
// the flag that raises the limit named. Ten times less, under the ratio's
// ceiling for its size, unpacks.
func TestZipBomb(t *testing.T) {
	for _, format := range []string{"zip", "tar.gz"} {
		t.Run(format, func(t *testing.T) {
			p := writeArchive(t, format, []entry{{name: "a", body: "first"}, {name: "zeros", zero: 64 << 20}})
			info, _ := os.Stat(p)
			handed := 0
			err := Walk(p, Policy{}, func(*Member, io.Reader) error { handed++; return nil })
			var le *LimitError
			if !errors.As(err, &le) || le.Member != "zeros" || le.Ratio != DefaultRatio || !strings.Contains(err.Error(), "--"+FlagRatio) {
				t.Fatalf("Walk(64 MiB of zeros in %d bytes) = %v, want a *LimitError at \"zeros\" naming --%s", info.Size(), err, FlagRatio)
			}
			if format == "zip" && handed != 0 {
				t.Errorf("Walk handed out %d members of a zip bomb, want none", handed)
			}
			dst := filepath.Join(t.TempDir(), "dst")
			if err := Extract(p, dst, Policy{}); !errors.As(err, &le) {
				t.Fatalf("Extract(bomb) = %v, want a *LimitError", err)
			}
			if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Extract(bomb) wrote %s, want nothing", dst)
			}
			// The same archive with the ratio raised past it unpacks.
			raised := Policy{Limits: Limits{Ratio: 100_000, Ceiling: 1 << 30, Files: 10}}
			if err := Extract(p, dst, raised); err != nil {
				t.Fatalf("Extract(bomb, ratio 100000) = %v, want it unpacked", err)
			}
			if fi, err := os.Stat(filepath.Join(dst, "zeros")); err != nil || fi.Size() != 64<<20 {
				t.Errorf("zeros: %v, %v; want 64 MiB", fi, err)
			}
		})
	}
}

// TestExtract: files, directories, links that stay inside, a hard link
// as a copy, a leading "./" and executable bits.
func TestExtract(t *testing.T) {
	for _, format := range []string{"zip", "tar.gz"} {
		t.Run(format, func(t *testing.T) {
			es := []entry{{name: "./", dir: true}, {name: "./top/", dir: true}, {name: "./top/a/b.txt", body: "b"}, {name: "./top/l", link: "a/b.txt"}}
			if format == "tar.gz" {
				es = append(es, entry{name: "./top/h", hard: "./top/a/b.txt"})
			}
			p := writeArchive(t, format, es)
			dst := filepath.Join(t.TempDir(), "dst")
			if err := Extract(p, dst, Policy{Symlinks: true, Hardlinks: true, DotSlash: true, OneTop: true}); err != nil {
				t.Fatal(err)
			}
			if got, err := os.ReadFile(filepath.Join(dst, "top/l")); err != nil || string(got) != "b" {
				t.Errorf("top/l reads %q, %v; want the link to a/b.txt", got, err)
			}
			if format == "tar.gz" {
				fi, err := os.Lstat(filepath.Join(dst, "top/h"))
				if err != nil || !fi.Mode().IsRegular() || fi.Size() != 1 {
					t.Errorf("top/h: %v, %v; want a copy of a/b.txt", fi, err)
				}
			}
		})
	}
}

func TestNotAnArchive(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.tar.gz")
	if err := os.WriteFile(p, []byte("plain text"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Walk(p, Policy{}, nil); err == nil || !strings.Contains(err.Error(), "neither a .zip nor") {
		t.Errorf("Walk(text) = %v, want an error naming the formats", err)
	}
}
