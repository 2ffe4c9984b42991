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

// TestChangedAfterWriting: a member swapped, one added after the
// manifest, a manifest whose list was edited: each refused by name.
func TestChangedAfterWriting(t *testing.T) {
	format := `{"format":"bitpoll-install backup","version":1}` + "\n"
	good := Member{Name: "a", Size: 1, SHA256: "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"} // sha256("a")
	fm := Member{Name: FormatMember, Size: int64(len(format)), SHA256: sha(format)}
	manifest := func(ms ...Member) string {
		m := Manifest{Format: FormatName, Version: FormatVersion, Members: ms, Checksum: membersChecksum(ms)}
		return mustJSON(t, m)
	}
	ok := tarGz(t, [2]string{FormatMember, format}, [2]string{"a", "a"}, [2]string{ManifestMember, manifest(fm, good)})
	if _, err := Verify(ok); err != nil {
		t.Fatalf("a hand-made good archive: %v", err)
	}
	refused(t, tarGz(t, [2]string{FormatMember, format}, [2]string{"a", "b"}, [2]string{ManifestMember, manifest(fm, good)}), "a", "sha256")
	refused(t, tarGz(t, [2]string{FormatMember, format}, [2]string{"a", "a"}, [2]string{ManifestMember, manifest(fm, good)}, [2]string{"evil", "x"}), "evil", "follows the manifest")
	refused(t, tarGz(t, [2]string{FormatMember, format}, [2]string{"a", "a"}, [2]string{"b", "b"}, [2]string{ManifestMember, manifest(fm, good)}), "b", "not in the manifest")
	refused(t, tarGz(t, [2]string{FormatMember, format}, [2]string{ManifestMember, manifest(fm, good)}), "a", "missing")
	edited := strings.Replace(manifest(fm, good), `"size":1`, `"size":2`, 1)
	refused(t, tarGz(t, [2]string{FormatMember, format}, [2]string{"a", "a"}, [2]string{ManifestMember, edited}), ManifestMember, "checksum")
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
