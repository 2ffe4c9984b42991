package fetch

import (
	"context"
	"errors"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testarchive"
	"github.com/bitpoll-install/bitpoll-install/safearchive"
)

// member is one entry of a generated archive.
type member = testarchive.Member

func writeTarGz(t *testing.T, path string, members []member) {
	t.Helper()
	mustWrite(t, path, testarchive.TarGz(t, members...))
}

func writeZip(t *testing.T, path string, members []member) {
	t.Helper()
	mustWrite(t, path, testarchive.Zip(t, members...))
}

// writeLyingZip writes a zip whose one member declares 10 bytes but
// inflates to 1 MiB.
func writeLyingZip(t *testing.T, path string) {
	t.Helper()
	writeZip(t, path, []member{{Name: "small.txt", Zeros: 1 << 20, ClaimSize: 10}})
}

func mustWrite(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// testLimits are small enough to trip in tests.
var testLimits = limits{download: 1 << 20, unpack: safearchive.Limits{Ceiling: 1 << 20, Files: 10}}

func manyFiles(n int) []member {
	var ms []member
	for i := 0; i < n; i++ {
		ms = append(ms, member{Name: "f" + strings.Repeat("x", i), Body: "x"})
	}
	return ms
}

func TestHostileArchives(t *testing.T) {
	for _, tc := range []struct {
		name    string
		members []member
		want    string
	}{
		{"dotdot", []member{{Name: "ok.txt", Body: "ok"}, {Name: "../evil", Body: "x"}}, `escapes the archive with ".."`},
		{"dotdot-nested", []member{{Name: "a/../../evil", Body: "x"}}, `escapes the archive with ".."`},
		{"absolute", []member{{Name: "/tmp/evil", Body: "x"}}, "absolute path"},
		{"symlink", []member{{Name: "link", Symlink: "/etc/passwd"}}, "only regular files and directories"},
		{"symlink-then-write", []member{{Name: "d", Symlink: ".."}, {Name: "d/evil", Body: "x"}}, "only regular files and directories"},
		{"too-many-files", manyFiles(11), "more than 10 entries"},
		{"too-large", []member{{Name: "big", Zeros: 1<<20 + 1}}, "more than 1048576 bytes"},
		{"too-large-sum", []member{{Name: "a", Zeros: 600 << 10}, {Name: "b", Zeros: 600 << 10}}, `at member "b"`},
	} {
		for _, format := range []string{"tar.gz", "zip"} {
			t.Run(tc.name+"."+format, func(t *testing.T) {
				root := t.TempDir()
				archive := filepath.Join(root, "in", "app."+format)
				if format == "zip" {
					writeZip(t, archive, tc.members)
				} else {
					writeTarGz(t, archive, tc.members)
				}
				assertRefused(t, root, archive, tc.want)
			})
		}
	}
}

func TestHostileTarOnly(t *testing.T) {
	for _, tc := range []struct {
		name    string
		members []member
		want    string
	}{
		{"hardlink", []member{{Name: "f", Body: "x"}, {Name: "h", Hardlink: "/etc/shadow"}}, "only regular files and directories"},
		{"fifo", []member{{Name: "p", Fifo: true}}, "only regular files and directories"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			archive := filepath.Join(root, "in", "app.tar.gz")
			writeTarGz(t, archive, tc.members)
			assertRefused(t, root, archive, tc.want)
		})
	}
}

func TestZipBomb(t *testing.T) {
	root := t.TempDir()
	archive := filepath.Join(root, "in", "bomb.zip")
	writeZip(t, archive, []member{{Name: "zeros", Zeros: 8 << 20}})
	if info, _ := os.Stat(archive); info.Size() > 64<<10 {
		t.Fatalf("bomb is %d bytes, expected a small archive", info.Size())
	}
	assertRefused(t, root, archive, "more than 1048576 bytes")
}

func TestLyingZipHeader(t *testing.T) {
	root := t.TempDir()
	archive := filepath.Join(root, "in", "lie.zip")
	writeLyingZip(t, archive)
	assertRefused(t, root, archive, "zip")
}

// assertRefused fetches archive with testLimits and checks the error and
// that nothing was left behind: no dst, no temporary directories, no file
// outside.
func assertRefused(t *testing.T, root, archive, want string) {
	t.Helper()
	dst := filepath.Join(root, "out", "app")
	err := get(context.Background(), archive, dst, testLimits)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("get(%q) = %v, want error containing %q", archive, err, want)
	}
	des, _ := os.ReadDir(filepath.Join(root, "out"))
	if len(des) != 0 {
		t.Errorf("get(%q) left %v in the destination's directory, want nothing", archive, names(des))
	}
	des, _ = os.ReadDir(root)
	if got := names(des); len(got) != 2 {
		t.Errorf("get(%q): %q holds %v, want only in and out", archive, root, got)
	}
}

func names(des []os.DirEntry) []string {
	var s []string
	for _, de := range des {
		s = append(s, de.Name())
	}
	return s
}

func TestArchiveStripsSingleTopDir(t *testing.T) {
	members := []member{
		{PAXGlobal: map[string]string{"comment": "0123456789abcdef0123456789abcdef01234567"}},
		{Name: "Bitpoll-0.11.0/", Dir: true},
		{Name: "Bitpoll-0.11.0/manage.py", Body: "#!/usr/bin/env python\n", Mode: 0o755},
		{Name: "Bitpoll-0.11.0/bitpoll/__init__.py", Body: ""},
	}
	for _, format := range []string{"tar.gz", "tgz", "zip"} {
		t.Run(format, func(t *testing.T) {
			root := t.TempDir()
			archive := filepath.Join(root, "app."+format)
			if format == "zip" {
				writeZip(t, archive, members)
			} else {
				writeTarGz(t, archive, members)
			}
			dst := filepath.Join(root, "out")
			if err := get(context.Background(), archive, dst, testLimits); err != nil {
				t.Fatal(err)
			}
			info, err := os.Stat(filepath.Join(dst, "manage.py"))
			if err != nil || info.Mode().Perm()&0o100 == 0 {
				t.Errorf("manage.py: info %v, err %v, want an executable file at the top", info, err)
			}
			if _, err := os.Stat(filepath.Join(dst, "bitpoll", "__init__.py")); err != nil {
				t.Errorf("bitpoll/__init__.py: %v, want a file", err)
			}
		})
	}
}

func TestArchiveKeepsSeveralTopEntries(t *testing.T) {
	root := t.TempDir()
	archive := filepath.Join(root, "app.tar.gz")
	writeTarGz(t, archive, []member{{Name: "dir/a", Body: "a"}, {Name: "b", Body: "b"}})
	dst := filepath.Join(root, "out")
	if err := Get(context.Background(), archive, dst); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"dir/a", "b"} {
		if _, err := os.Stat(filepath.Join(dst, p)); err != nil {
			t.Errorf("%s: %v, want a file", p, err)
		}
	}
}

func TestGetIntoNonEmptyDst(t *testing.T) {
	root := t.TempDir()
	archive := filepath.Join(root, "app.tar.gz")
	writeTarGz(t, archive, []member{{Name: "a", Body: "a"}})
	dst := filepath.Join(root, "out")
	mustWrite(t, filepath.Join(dst, "keep"), []byte("mine"))
	err := Get(context.Background(), archive, dst)
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("Get into non-empty dir = %v, want not-empty error", err)
	}
	if des, _ := os.ReadDir(dst); len(des) != 1 {
		t.Errorf("dst holds %v, want only keep", names(des))
	}
}

func TestGetIntoEmptyDst(t *testing.T) {
	root := t.TempDir()
	archive := filepath.Join(root, "app.zip")
	writeZip(t, archive, []member{{Name: "a", Body: "a"}})
	dst := filepath.Join(root, "out")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Get(context.Background(), archive, dst); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dst, "a")); err != nil || string(got) != "a" {
		t.Errorf("a = %q, %v, want \"a\"", got, err)
	}
}

func TestGetHTTP(t *testing.T) {
	dir := t.TempDir()
	writeTarGz(t, filepath.Join(dir, "archive", "0.11.0.tar.gz"), []member{
		{Name: "Bitpoll-0.11.0/setup.cfg", Body: "[x]\n"},
	})
	noise := make([]byte, 2<<20)
	rand.New(rand.NewSource(1)).Read(noise)
	writeTarGz(t, filepath.Join(dir, "big.tar.gz"), []member{{Name: "r", Body: string(noise)}})
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServer(http.Dir(dir)))
	mux.HandleFunc("/redirector", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Terraform-Get", "file://"+dir)
		w.Write([]byte("<html></html>"))
	})
	mux.HandleFunc("/chunked.tar.gz", func(w http.ResponseWriter, r *http.Request) {
		// Flushing first drops Content-Length, so only the body limit can stop it.
		w.(http.Flusher).Flush()
		for i := 0; i < 4; i++ {
			w.Write(noise[:512<<10])
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	t.Run("archive", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "app")
		if err := get(context.Background(), srv.URL+"/archive/0.11.0.tar.gz", dst, testLimits); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(filepath.Join(dst, "setup.cfg")); err != nil || string(got) != "[x]\n" {
			t.Errorf("setup.cfg = %q, %v, want \"[x]\\n\"", got, err)
		}
	})
	t.Run("archive-param", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "app")
		if err := get(context.Background(), srv.URL+"/archive/0.11.0.tar.gz?archive=tar.gz", dst, testLimits); err != nil {
			t.Fatal(err)
		}
	})
	for _, tc := range []struct{ name, path, want string }{
		{"download-too-large", "/big.tar.gz", "larger than 1048576 bytes"},
		{"download-too-large-chunked", "/chunked.tar.gz", "larger than 1048576 bytes"},
		{"not-an-archive", "/redirector", "is not an archive"},
		{"not-found", "/nope.tar.gz", "404"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			dst := filepath.Join(out, "app")
			err := get(context.Background(), srv.URL+tc.path, dst, testLimits)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("get(%q) = %v, want error containing %q", tc.path, err, tc.want)
			}
			if des, _ := os.ReadDir(out); len(des) != 0 {
				t.Errorf("get(%q) left %v, want nothing", tc.path, names(des))
			}
		})
	}
}

func TestGetCanceled(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Get(ctx, srv.URL+"/app.tar.gz", filepath.Join(t.TempDir(), "app"))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Get with canceled context = %v, want context.Canceled", err)
	}
}

func TestGetLocalDir(t *testing.T) {
	src := t.TempDir()
	mustWrite(t, filepath.Join(src, "manage.py"), []byte("x"))
	if err := os.Chmod(filepath.Join(src, "manage.py"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(src, "a", "b", "c.txt"), []byte("c"))
	mustWrite(t, filepath.Join(src, ".git", "HEAD"), []byte("ref: refs/heads/main\n"))
	mustWrite(t, filepath.Join(src, "z.txt"), []byte("after .git"))
	dst := filepath.Join(t.TempDir(), "app")
	if err := Get(context.Background(), src, dst); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Lstat(dst); err != nil || !info.IsDir() {
		t.Fatalf("dst: %v, %v, want a real directory (not a symlink)", info, err)
	}
	if info, err := os.Stat(filepath.Join(dst, "manage.py")); err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("manage.py: %v, %v, want mode 0755", info, err)
	}
	if got, err := os.ReadFile(filepath.Join(dst, "a", "b", "c.txt")); err != nil || string(got) != "c" {
		t.Errorf("a/b/c.txt = %q, %v, want \"c\"", got, err)
	}
	if got, err := os.ReadFile(filepath.Join(dst, "z.txt")); err != nil || string(got) != "after .git" {
		t.Errorf("z.txt = %q, %v, want \"after .git\"", got, err)
	}
	if _, err := os.Stat(filepath.Join(dst, ".git")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf(".git: %v, want it left out", err)
	}
}

func TestGetLocalDirRefusesSymlink(t *testing.T) {
	src := t.TempDir()
	mustWrite(t, filepath.Join(src, "f"), []byte("x"))
	if err := os.Symlink("/etc/passwd", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	err := Get(context.Background(), src, filepath.Join(out, "app"))
	if err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Fatalf("Get(dir with symlink) = %v, want symlink error", err)
	}
	if des, _ := os.ReadDir(out); len(des) != 0 {
		t.Errorf("left %v, want nothing", names(des))
	}
}

// TestArchiveRatio: an archive that unpacks to more than Ratio times its
// own size is refused before anything is written; one within it unpacks.
func TestArchiveRatio(t *testing.T) {
	lim := limits{download: 1 << 20, unpack: safearchive.Limits{Ratio: 10, Ceiling: 1 << 30, Files: 10}}
	noise := make([]byte, 64<<10)
	rand.New(rand.NewSource(2)).Read(noise)
	for _, format := range []string{"tar.gz", "zip"} {
		t.Run("bomb."+format, func(t *testing.T) {
			root := t.TempDir()
			archive := filepath.Join(root, "in", "app."+format)
			members := []member{{Name: "zeros", Zeros: 1 << 20}}
			if format == "zip" {
				writeZip(t, archive, members)
			} else {
				writeTarGz(t, archive, members)
			}
			dst := filepath.Join(root, "out", "app")
			err := get(context.Background(), archive, dst, lim)
			var le *safearchive.LimitError
			if !errors.As(err, &le) || le.Ratio != 10 || le.Member != "zeros" {
				t.Fatalf("get(1 MiB of zeros) = %v, want a *LimitError for the ratio 10 at member \"zeros\"", err)
			}
			if des, _ := os.ReadDir(filepath.Join(root, "out")); len(des) != 0 {
				t.Errorf("get(1 MiB of zeros) left %v, want nothing", names(des))
			}
		})
		t.Run("within."+format, func(t *testing.T) {
			root := t.TempDir()
			archive := filepath.Join(root, "in", "app."+format)
			members := []member{{Name: "noise", Body: string(noise)}}
			if format == "zip" {
				writeZip(t, archive, members)
			} else {
				writeTarGz(t, archive, members)
			}
			dst := filepath.Join(root, "out", "app")
			if err := get(context.Background(), archive, dst, lim); err != nil {
				t.Fatalf("get(64 KiB of noise) = %v, want it unpacked", err)
			}
			if got, err := os.ReadFile(filepath.Join(dst, "noise")); err != nil || len(got) != len(noise) {
				t.Errorf("noise: %d bytes, %v; want %d", len(got), err, len(noise))
			}
		})
	}
}
