// Package testarchive writes the tar.gz and zip archives that tests feed
// the archive readers: wheels, sdists and source archives, hostile ones
// included (links, bombs). It imports nothing of ours, so that the tests
// of every package, safearchive's too, can use it. It is imported only by
// tests.
package testarchive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Member is one entry of an archive: a regular file unless Dir, Symlink
// or Hardlink says otherwise.
type Member struct {
	Name     string
	Body     string
	Zeros    int64       // after Body, this many zero bytes (a bomb)
	Mode     fs.FileMode // permission bits; 0 is 0644 for a file, 0755 for a directory
	Dir      bool
	Symlink  string // a symbolic link to this target
	Hardlink string // a hard link to this member (tar only: a zip leaves it out)
	Fifo     bool   // a named pipe
	// PAXGlobal makes the member a PAX global header with these records,
	// as GitHub's tarballs carry the commit (tar only: a zip leaves it out).
	PAXGlobal map[string]string
	// ClaimSize, when set, is the uncompressed size a zip member's header
	// declares, whatever Body and Zeros hold: a bomb that lies about its
	// size (zip only).
	ClaimSize int64
}

func (m Member) perm() fs.FileMode {
	switch {
	case m.Mode != 0:
		return m.Mode
	case m.Dir:
		return 0o755
	case m.Symlink != "":
		return 0o777
	}
	return 0o644
}

func (m Member) body() io.Reader {
	return io.MultiReader(strings.NewReader(m.Body), io.LimitReader(zeros{}, m.Zeros))
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TarGz returns a gzipped tar of ms, in their order.
func TarGz(tb testing.TB, ms ...Member) []byte {
	tb.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, m := range ms {
		h := &tar.Header{Name: m.Name, Mode: int64(m.perm()), Typeflag: tar.TypeReg, Size: int64(len(m.Body)) + m.Zeros}
		switch {
		case m.PAXGlobal != nil:
			h = &tar.Header{Typeflag: tar.TypeXGlobalHeader, PAXRecords: m.PAXGlobal}
		case m.Fifo:
			h.Typeflag, h.Size = tar.TypeFifo, 0
		case m.Dir:
			h.Typeflag, h.Size = tar.TypeDir, 0
		case m.Symlink != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, m.Symlink, 0
		case m.Hardlink != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, m.Hardlink, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			tb.Fatalf("tar %s: %v", m.Name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.Copy(tw, m.body()); err != nil {
				tb.Fatalf("tar %s: %v", m.Name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// Zip returns a zip archive of ms, in their order, deflated. A symbolic
// link is stored as zip stores one: its target as the content, with the
// link mode.
func Zip(tb testing.TB, ms ...Member) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range ms {
		if m.Hardlink != "" || m.PAXGlobal != nil {
			continue
		}
		h := &zip.FileHeader{Name: m.Name, Method: zip.Deflate}
		body := m.body()
		switch {
		case m.Fifo:
			h.SetMode(fs.ModeNamedPipe | m.perm())
			body = strings.NewReader("")
		case m.Dir:
			h.Name = strings.TrimSuffix(m.Name, "/") + "/"
			h.SetMode(fs.ModeDir | m.perm())
			body = strings.NewReader("")
		case m.Symlink != "":
			h.SetMode(fs.ModeSymlink | m.perm())
			body = strings.NewReader(m.Symlink)
		default:
			h.SetMode(m.perm())
		}
		if m.ClaimSize != 0 {
			writeRaw(tb, zw, h, body, m.ClaimSize)
			continue
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			tb.Fatalf("zip %s: %v", m.Name, err)
		}
		if _, err := io.Copy(w, body); err != nil {
			tb.Fatalf("zip %s: %v", m.Name, err)
		}
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// writeRaw stores body deflated under h, which declares size bytes.
func writeRaw(tb testing.TB, zw *zip.Writer, h *zip.FileHeader, body io.Reader, size int64) {
	tb.Helper()
	var comp bytes.Buffer
	fw, err := flate.NewWriter(&comp, flate.BestCompression)
	if err != nil {
		tb.Fatal(err)
	}
	crc := crc32.NewIEEE()
	if _, err := io.Copy(io.MultiWriter(fw, crc), body); err != nil {
		tb.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		tb.Fatal(err)
	}
	h.CRC32 = crc.Sum32()
	h.CompressedSize64, h.UncompressedSize64 = uint64(comp.Len()), uint64(size)
	w, err := zw.CreateRaw(h)
	if err != nil {
		tb.Fatalf("zip %s: %v", h.Name, err)
	}
	if _, err := w.Write(comp.Bytes()); err != nil {
		tb.Fatalf("zip %s: %v", h.Name, err)
	}
}

// Wheel returns a wheel: a zip of ms, in their order, then distInfo's
// RECORD with the sha256 and size of each file member.
func Wheel(tb testing.TB, distInfo string, ms ...Member) []byte {
	tb.Helper()
	var record strings.Builder
	for _, m := range ms {
		if m.Dir || m.Symlink != "" || m.Hardlink != "" {
			continue
		}
		h := sha256.New()
		n, _ := io.Copy(h, m.body())
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", m.Name, base64.RawURLEncoding.EncodeToString(h.Sum(nil)), n)
	}
	record.WriteString(distInfo + "/RECORD,,\n")
	return Zip(tb, append(ms[:len(ms):len(ms)], Member{Name: distInfo + "/RECORD", Body: record.String()})...)
}

// Tree is the members of an archive of files under the folder top ("" for
// none): a directory entry for each folder, then the files, each sorted
// by name.
func Tree(top string, files map[string]string) []Member {
	dirs := map[string]bool{}
	for n := range files {
		for d := path.Dir(path.Join(top, n)); d != "." && d != "/" && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	ds := make([]string, 0, len(dirs))
	for d := range dirs {
		ds = append(ds, d)
	}
	sort.Strings(ds)
	var ms []Member
	for _, d := range ds {
		ms = append(ms, Member{Name: d + "/", Dir: true})
	}
	for _, m := range Flat(files) {
		m.Name = path.Join(top, m.Name)
		ms = append(ms, m)
	}
	return ms
}

// Flat is the files, sorted by name, with no directory entries.
func Flat(files map[string]string) []Member {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	ms := make([]Member, len(names))
	for i, n := range names {
		ms[i] = Member{Name: n, Body: files[n]}
	}
	return ms
}

// FromDir is the members of the directories and regular files under dir
// (but its .git), in lexical order, with their permission bits.
func FromDir(tb testing.TB, dir string) []Member {
	tb.Helper()
	var ms []Member
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		if rel == ".git" {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		m := Member{Name: filepath.ToSlash(rel), Mode: info.Mode().Perm()}
		switch {
		case info.IsDir():
			m.Name, m.Dir = m.Name+"/", true
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			m.Body = string(b)
		default:
			return nil
		}
		ms = append(ms, m)
		return nil
	})
	if err != nil {
		tb.Fatalf("archive %s: %v", dir, err)
	}
	return ms
}

// Write writes data to the file p and returns p.
func Write(tb testing.TB, p string, data []byte) string {
	tb.Helper()
	if err := os.WriteFile(p, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}
