package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sample writes an archive of three members, one of them 1 MiB of
// random bytes (which deflate stores as they are), and returns its path
// and the members' contents.
func sample(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	big := make([]byte, 1<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "big.bin")
	if err := os.WriteFile(src, big, 0o644); err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{
		"database.sqlite3":   []byte(strings.Repeat("SQLite format 3\x00", 1000)),
		"media/big.bin":      big,
		"etc/secrets/secret": []byte("s3cret\n"),
	}
	path := filepath.Join(dir, "out", "b.tar.gz")
	w, err := create(path, time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.addBytes("database.sqlite3", want["database.sqlite3"]); err != nil {
		t.Fatal(err)
	}
	if err := w.addFile("media/big.bin", src); err != nil {
		t.Fatal(err)
	}
	if err := w.addBytes("etc/secrets/secret", want["etc/secrets/secret"]); err != nil {
		t.Fatal(err)
	}
	if _, err := w.finish(); err != nil {
		t.Fatal(err)
	}
	return path, want
}

func TestRoundTrip(t *testing.T) {
	path, want := sample(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != Mode {
		t.Errorf("archive mode = %v, want %v", fi.Mode().Perm(), Mode)
	}
	if _, err := os.Stat(path + ".partial"); err == nil {
		t.Error("the .partial file is left behind")
	}
	m, err := Verify(path)
	if err != nil {
		t.Fatalf("Verify = %v, want nil", err)
	}
	if len(m.Members) != 4 { // the format member and three
		t.Errorf("manifest has %d members, want 4: %+v", len(m.Members), m.Members)
	}
	dir := filepath.Join(t.TempDir(), "x")
	if _, err := Extract(path, dir); err != nil {
		t.Fatal(err)
	}
	for name, data := range want {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("extracted %s: %d bytes, %v; want the %d bytes written", name, len(got), err, len(data))
		}
	}
	if _, err := create(path, time.Now()); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("create over an existing backup = %v, want a refusal", err)
	}
}

// refused checks that Verify and Extract refuse path naming member, and
// that Extract leaves nothing behind.
func refused(t *testing.T, path, member, why string) {
	t.Helper()
	_, err := Verify(path)
	var ae *ArchiveError
	if !errors.As(err, &ae) {
		t.Fatalf("Verify = %v, want an *ArchiveError", err)
	}
	if member != "" && ae.Member != member {
		t.Errorf("Verify refused member %q (%v), want %q", ae.Member, err, member)
	}
	if !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), "nothing was changed") {
		t.Errorf("Verify = %v, want it to say %q and that nothing was changed", err, why)
	}
	dir := filepath.Join(t.TempDir(), "x")
	if _, err := Extract(path, dir); err == nil {
		t.Error("Extract accepted what Verify refused")
	}
	if _, err := os.Stat(dir); err == nil {
		t.Error("Extract left its directory behind after a refusal")
	}
}

func TestTamperedByte(t *testing.T) {
	path, _ := sample(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The middle of the archive lies in the stored random member.
	data[len(data)/2] ^= 0x01
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	refused(t, path, "media/big.bin", "sha256")
}

func TestTruncated(t *testing.T) {
	path, _ := sample(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	refused(t, path, "media/big.bin", "truncated")
	// Cut just before the manifest's end: every data member is whole.
	if err := os.WriteFile(path, data[:len(data)-40], 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Verify(path)
	if err == nil {
		t.Fatal("Verify of an archive without its tail = nil, want a refusal")
	}
}

// tarGz writes members (name, content) as a gzip'd tar.
func tarGz(t *testing.T, members ...[2]string) string {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, m := range members {
		if err := tw.WriteHeader(&tar.Header{Name: m[0], Size: int64(len(m[1])), Mode: 0o600, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(m[1]))
	}
	tw.Close()
	gz.Close()
	path := filepath.Join(t.TempDir(), "foreign.tar.gz")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestForeignFile(t *testing.T) {
	refused(t, tarGz(t, [2]string{"etc/passwd", "root:x:0:0\n"}), "etc/passwd", "not a bitpoll-install backup")
	refused(t, tarGz(t, [2]string{FormatMember, `{"format":"something else","version":1}`}), FormatMember, "not a bitpoll-install backup")
	refused(t, tarGz(t, [2]string{FormatMember, `{"format":"bitpoll-install backup","version":9}`}), FormatMember, "version 9")
	text := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(text, []byte("not an archive at all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	refused(t, text, "", "not a bitpoll-install backup")
}

// build writes an archive of members (name, content) with the writer,
// at a fixed time, and returns its bytes.
func build(t *testing.T, members ...[2]string) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "b.tar.gz")
	w, err := create(path, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if err := w.addBytes(m[0], []byte(m[1])); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.finish(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// split cuts an archive into its members' streams and its manifest's.
func split(t *testing.T, data []byte) (members, manifest []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "b.tar.gz")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := findManifest(path)
	if err != nil || m == nil {
		t.Fatalf("findManifest = %v, %v", m, err)
	}
	at := m.End.Offset + m.End.Size
	return data[:at], data[at:]
}

func write(t *testing.T, parts ...[]byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "spliced.tar.gz")
	if err := os.WriteFile(path, bytes.Join(parts, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestChangedAfterWriting splices archives written by the writer: other
// content under a manifest, a member added or missing, a stream added
// after the manifest, a manifest edited or rewritten by hand. Each is
// refused, by name.
func TestChangedAfterWriting(t *testing.T) {
	ab := build(t, [2]string{"a", "a"}, [2]string{"b", "b"})
	abMembers, abManifest := split(t, ab)
	axMembers, _ := split(t, build(t, [2]string{"a", "x"}, [2]string{"b", "b"}))
	aMembers, aManifest := split(t, build(t, [2]string{"a", "a"}))

	refused(t, write(t, axMembers, abManifest), "a", "the archive was changed there")
	// b added: the members' stream does not end where the manifest says.
	refused(t, write(t, abMembers, aManifest), "a", "the archive was changed there")
	// b missing: its bytes are the end of the members' stream.
	refused(t, write(t, aMembers, abManifest), "b", "the archive was changed there")
	refused(t, write(t, abMembers, abManifest, []byte("junk")), ManifestMember, "followed by more data")
	refused(t, write(t, ab, ab), "", "was changed")

	// A manifest edited: its checksum no longer matches. Written by hand
	// as one stream with the members: refused though all else agrees.
	format := `{"format":"bitpoll-install backup","version":1}` + "\n"
	fm := Member{Name: FormatMember, Size: int64(len(format)), SHA256: sha(format)}
	a := Member{Name: "a", Size: 1, SHA256: sha("a")}
	manifest := func(ms ...Member) string {
		m := Manifest{Format: FormatName, Version: FormatVersion, Members: ms}
		m.Checksum = manifestChecksum(m)
		return mustJSON(t, m)
	}
	refused(t, tarGz(t, [2]string{FormatMember, format}, [2]string{"a", "a"}, [2]string{ManifestMember, manifest(fm, a)}), ManifestMember, "not in a gzip stream of its own")
	edited := strings.Replace(manifest(fm, a), `"size":1,`, `"size":2,`, 1)
	refused(t, tarGz(t, [2]string{FormatMember, format}, [2]string{"a", "a"}, [2]string{ManifestMember, edited}), ManifestMember, "checksum")
	refused(t, tarGz(t, [2]string{FormatMember, format}, [2]string{"a", "b"}, [2]string{ManifestMember, manifest(fm, a)}), "a", "sha256")
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestEveryByteCounts flips each byte of a small archive in turn: every
// flip before the manifest is refused and blamed on the member whose
// bytes it lies in; a flip in the manifest's own bytes is refused unless
// it changed nothing that is read (a padding bit of the compressed
// stream's last block), in which case the archive still holds exactly
// what was written.
func TestEveryByteCounts(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "b.tar.gz")
	w, err := create(path, time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range [][2]string{{"database.sqlite3", strings.Repeat("rows ", 200)}, {"etc/bitpoll.toml", "port = 8000\n"}, {"media/a.png", "picture"}} {
		if err := w.addBytes(m[0], []byte(m[1])); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.finish(); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Verify(path)
	if err != nil {
		t.Fatal(err)
	}
	// owner is the member whose bytes hold offset off; before is the
	// one ahead of it, which a refusal names when the flip made the next
	// member's header unreadable ("after this member").
	owner := func(off int) string {
		for _, x := range m.Members {
			if int64(off) >= x.Packed.Offset && int64(off) < x.Packed.Offset+x.Packed.Size {
				return x.Name
			}
		}
		if int64(off) < m.End.Offset+m.End.Size {
			return m.Members[len(m.Members)-1].Name // the end of the members' stream
		}
		return ManifestMember
	}
	before := func(name string) string {
		prev := ""
		for _, x := range m.Members {
			if x.Name == name {
				return prev
			}
			prev = x.Name
		}
		return prev // the manifest's: the last member
	}
	content := func(data []byte) []byte {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil
		}
		out, err := io.ReadAll(zr)
		if err != nil {
			return nil
		}
		return out
	}
	want := content(good)
	bad := filepath.Join(dir, "bad.tar.gz")
	passed := 0
	for off := range good {
		data := append([]byte(nil), good...)
		data[off] ^= 0x01
		if err := os.WriteFile(bad, data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Verify(bad)
		var ae *ArchiveError
		switch {
		case err == nil && owner(off) == ManifestMember && bytes.Equal(content(data), want):
			passed++ // nothing that is read changed
		case err == nil:
			t.Errorf("byte %d of %d flipped (in %s): accepted", off, len(good), owner(off))
		case !errors.As(err, &ae):
			t.Errorf("byte %d flipped: %v, want an *ArchiveError", off, err)
		case strings.Contains(err.Error(), "after this member"):
			// The stream broke where the next member starts: a flip in
			// the end of owner's bytes (the compressor's flush) or in
			// the start of owner's (its header), read after the member
			// before it.
			if ae.Member != owner(off) && ae.Member != before(owner(off)) {
				t.Errorf("byte %d flipped: refused as after member %q (%v), want after %q or %q", off, ae.Member, err, before(owner(off)), owner(off))
			}
		case owner(off) == ManifestMember:
			// The manifest's own bytes: any refusal blames it, under the
			// name its damaged header gives ("0000000/manifest.json" when
			// the flip lands in the header's prefix field).
		case ae.Member != owner(off):
			t.Errorf("byte %d flipped: refused member %q (%v), want %q, whose bytes it lies in", off, ae.Member, err, owner(off))
		}
	}
	t.Logf("%d bytes, each flipped: %d accepted, all in the manifest's own stream (its gzip header's time and system bytes, padding bits) and changing nothing that is read", len(good), passed)
}
