package fetch

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"errors"
	"io/fs"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/safearchive"
)

// member is one entry of a generated archive.
type member struct {
	name string
	body string
	mode fs.FileMode // 0 means 0644 for files
	link string      // symlink (or hard link for tar) target
	hard bool
	size int // when > 0, the body is this many zero bytes
}

func (m member) data() []byte {
	if m.size > 0 {
		return make([]byte, m.size)
	}
	return []byte(m.body)
}

func writeTarGz(t *testing.T, path string, members []member) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, m := range members {
		hdr := &tar.Header{Name: m.name, Mode: 0o644}
		switch {
		case m.name == "pax_global_header":
			// As in GitHub tarballs, which record the commit here.
			hdr = &tar.Header{Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": m.body}}
		case m.hard:
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, m.link
		case m.link != "":
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, m.link, 0o777
		case m.mode&fs.ModeNamedPipe != 0:
			hdr.Typeflag = tar.TypeFifo
		case m.mode.IsDir() || strings.HasSuffix(m.name, "/"):
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
		default:
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(m.data()))
			if m.mode != 0 {
				hdr.Mode = int64(m.mode.Perm())
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := tw.Write(m.data()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, path, buf.Bytes())
}

func writeZip(t *testing.T, path string, members []member) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		hdr := &zip.FileHeader{Name: m.name, Method: zip.Deflate}
		data := m.data()
		switch {
		case m.name == "pax_global_header":
			continue
		case m.link != "":
			hdr.SetMode(fs.ModeSymlink | 0o777)
			data = []byte(m.link)
		case strings.HasSuffix(m.name, "/"):
			hdr.SetMode(fs.ModeDir | 0o755)
		case m.mode != 0:
			hdr.SetMode(m.mode)
		default:
			hdr.SetMode(0o644)
		}
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, path, buf.Bytes())
}

// writeLyingZip writes a zip whose one member declares 10 bytes but
// inflates to 1 MiB.
func writeLyingZip(t *testing.T, path string) {
	t.Helper()
	var comp bytes.Buffer
	fw, _ := flate.NewWriter(&comp, flate.BestCompression)
	fw.Write(make([]byte, 1<<20))
	fw.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	hdr := &zip.FileHeader{Name: "small.txt", Method: zip.Deflate, CompressedSize64: uint64(comp.Len()), UncompressedSize64: 10}
	w, err := zw.CreateRaw(hdr)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(comp.Bytes())
	zw.Close()
	mustWrite(t, path, buf.Bytes())
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
		ms = append(ms, member{name: "f" + strings.Repeat("x", i), body: "x"})
	}
	return ms
}

func TestHostileArchives(t *testing.T) {
	for _, tc := range []struct {
		name    string
		members []member
		want    string
	}{
		{"dotdot", []member{{name: "ok.txt", body: "ok"}, {name: "../evil", body: "x"}}, `escapes the archive with ".."`},
		{"dotdot-nested", []member{{name: "a/../../evil", body: "x"}}, `escapes the archive with ".."`},
		{"absolute", []member{{name: "/tmp/evil", body: "x"}}, "absolute path"},
		{"symlink", []member{{name: "link", link: "/etc/passwd"}}, "only regular files and directories"},
		{"symlink-then-write", []member{{name: "d", link: ".."}, {name: "d/evil", body: "x"}}, "only regular files and directories"},
		{"too-many-files", manyFiles(11), "more than 10 entries"},
		{"too-large", []member{{name: "big", size: 1<<20 + 1}}, "more than 1048576 bytes"},
		{"too-large-sum", []member{{name: "a", size: 600 << 10}, {name: "b", size: 600 << 10}}, `at member "b"`},
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
		{"hardlink", []member{{name: "f", body: "x"}, {name: "h", link: "/etc/shadow", hard: true}}, "only regular files and directories"},
		{"fifo", []member{{name: "p", mode: fs.ModeNamedPipe}}, "only regular files and directories"},
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
	writeZip(t, archive, []member{{name: "zeros", size: 8 << 20}})
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
		{name: "pax_global_header", body: "0123456789abcdef0123456789abcdef01234567"},
		{name: "Bitpoll-0.11.0/"},
		{name: "Bitpoll-0.11.0/manage.py", body: "#!/usr/bin/env python\n", mode: 0o755},
		{name: "Bitpoll-0.11.0/bitpoll/__init__.py", body: ""},
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
	writeTarGz(t, archive, []member{{name: "dir/a", body: "a"}, {name: "b", body: "b"}})
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
	writeTarGz(t, archive, []member{{name: "a", body: "a"}})
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
	writeZip(t, archive, []member{{name: "a", body: "a"}})
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
		{name: "Bitpoll-0.11.0/setup.cfg", body: "[x]\n"},
	})
	noise := make([]byte, 2<<20)
	rand.New(rand.NewSource(1)).Read(noise)
	writeTarGz(t, filepath.Join(dir, "big.tar.gz"), []member{{name: "r", body: string(noise)}})
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
			members := []member{{name: "zeros", size: 1 << 20}}
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
			members := []member{{name: "noise", body: string(noise)}}
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
