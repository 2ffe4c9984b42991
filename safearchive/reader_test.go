package safearchive

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testarchive"
)

// entry is one member of a generated archive.
type entry = testarchive.Member

func writeArchive(t *testing.T, format string, es []entry) string {
	t.Helper()
	data := testarchive.TarGz(t, es...)
	if format == "zip" {
		data = testarchive.Zip(t, es...)
	}
	return testarchive.Write(t, filepath.Join(t.TempDir(), "archive."+format), data)
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
		{"dotdot", []entry{{Name: "ok", Body: "x"}, {Name: "a/../../evil", Body: "x"}}, Policy{}, nil, `escapes the archive with ".."`},
		{"absolute", []entry{{Name: "/etc/evil", Body: "x"}}, Policy{}, nil, "absolute path"},
		{"backslash", []entry{{Name: `a\..\..\evil`, Body: "x"}}, Policy{}, nil, "backslash"},
		{"symlink refused", []entry{{Name: "l", Symlink: "x"}}, Policy{}, nil, "only regular files and directories"},
		{"symlink absolute", []entry{{Name: "l", Symlink: "/etc/passwd"}}, links, nil, `links to "/etc/passwd"; want a relative path`},
		{"symlink escapes", []entry{{Name: "a/l", Symlink: "../../etc"}}, links, nil, "outside the archive"},
		{"symlink dotdot late", []entry{{Name: "a/b/l", Symlink: "x/../.."}}, links, nil, `".." may only start`},
		{"symlink escapes top", []entry{{Name: "top/l", Symlink: "../x"}}, Policy{Symlinks: true, OneTop: true}, nil, "outside its top directory"},
		{"write through link", []entry{{Name: "d/", Dir: true}, {Name: "l", Symlink: "d"}, {Name: "l/evil", Body: "x"}}, links, nil, `lies below "l", which is a symbolic link`},
		{"below a file", []entry{{Name: "f", Body: "x"}, {Name: "f/g", Body: "x"}}, Policy{}, nil, `lies below "f", which is a file`},
		{"duplicate", []entry{{Name: "a", Body: "x"}, {Name: "a", Body: "y"}}, Policy{}, nil, "appears twice"},
		{"duplicate dot-slash", []entry{{Name: "a", Body: "x"}, {Name: "./a", Body: "y"}}, Policy{DotSlash: true}, nil, "appears twice"},
		{"hard link refused", []entry{{Name: "f", Body: "x"}, {Name: "h", Hardlink: "f"}}, Policy{}, []string{"tar.gz"}, "only regular files and directories"},
		{"hard link outside", []entry{{Name: "h", Hardlink: "/etc/shadow"}}, links, []string{"tar.gz"}, `is a hard link to "/etc/shadow"`},
		{"hard link forward", []entry{{Name: "h", Hardlink: "f"}, {Name: "f", Body: "x"}}, links, []string{"tar.gz"}, "want an earlier regular file"},
		{"two tops", []entry{{Name: "a/x", Body: "x"}, {Name: "b/y", Body: "y"}}, Policy{OneTop: true}, nil, "lie in different top directories"},
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
			p := writeArchive(t, format, []entry{{Name: "a", Body: "first"}, {Name: "zeros", Zeros: 64 << 20}})
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
			es := []entry{{Name: "./", Dir: true}, {Name: "./top/", Dir: true}, {Name: "./top/a/b.txt", Body: "b"}, {Name: "./top/l", Symlink: "a/b.txt"}}
			if format == "tar.gz" {
				es = append(es, entry{Name: "./top/h", Hardlink: "./top/a/b.txt"})
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
