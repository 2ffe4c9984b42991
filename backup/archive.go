package backup

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/bitpoll-install/bitpoll-install/safearchive"
)

// The archive is a gzip'd tar (read by tar -xzf as any other). Its first
// member says what it is; its last, the manifest, lists every other
// member with its size and sha256, and with the sha256 of the member's
// compressed bytes in the file: the writer flushes the compressor after
// each member, so these ranges tile the file up to the manifest, which
// is a gzip stream of its own at the end. A reader finds and checks the
// manifest first, then every byte before it (a tampered byte, even in a
// tar header or in padding, is blamed on its member), then the content
// of each member as it unpacks it.
const (
	// FormatMember is the first member: what the archive is.
	FormatMember = "bitpoll-backup.json"
	// ManifestMember is the last member: every other member's name,
	// size and sha256.
	ManifestMember = "manifest.json"
	// FormatName and FormatVersion are what FormatMember holds.
	FormatName    = "bitpoll-install backup"
	FormatVersion = 1
)

// Limits on what a backup may unpack to. The ratio check of the other
// archives does not apply (a database of empty pages compresses far
// better than source code); the manifest bounds the rest.
const (
	MaxBytes   int64 = 1 << 40
	MaxMembers       = 1_000_000
)

// Mode is the archive's file mode: it holds the secrets and every
// user's data.
const Mode fs.FileMode = 0o600

// Member is one member of the archive as the manifest lists it.
type Member struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Packed is where the member lies in the archive file: its tar
	// header, content and padding, compressed. The writer flushes the
	// compressor after each member, so the ranges follow each other from
	// the first byte to the manifest's, and every byte before the
	// manifest (framing and padding bits included) is checked and
	// blamed on its member.
	Packed Range `json:"packed"`
}

// Range is a span of the archive file's bytes and their sha256.
type Range struct {
	Offset int64  `json:"offset"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest is the archive's last member.
type Manifest struct {
	Format  string    `json:"format"`
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	Members []Member  `json:"members"`
	// End is the end of the members' gzip stream, after the last
	// member's bytes: the compressor's last block and checksum. The
	// manifest follows in a gzip stream of its own.
	End Range `json:"end"`
	at  int64 // where findManifest found it
	// Checksum is the sha256 of the manifest as JSON with Checksum
	// empty: a change to the manifest itself is found too.
	Checksum string `json:"checksum"`
}

// Find returns the member name, if the manifest lists it.
func (m *Manifest) Find(name string) (Member, bool) {
	for _, x := range m.Members {
		if x.Name == name {
			return x, true
		}
	}
	return Member{}, false
}

func manifestChecksum(m Manifest) string {
	m.Checksum = ""
	data, _ := json.Marshal(m)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// switchWriter writes to w, which may change between writes.
type switchWriter struct{ w io.Writer }

func (s *switchWriter) Write(b []byte) (int, error) { return s.w.Write(b) }

// packer counts and hashes the archive file's bytes, one range at a
// time.
type packer struct {
	w     io.Writer
	n     int64
	start int64
	h     hash.Hash
}

func (p *packer) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	p.h.Write(b[:n])
	return n, err
}

// cut ends the current range and starts the next.
func (p *packer) cut() Range {
	r := Range{Offset: p.start, Size: p.n - p.start, SHA256: hex.EncodeToString(p.h.Sum(nil))}
	p.start = p.n
	p.h.Reset()
	return r
}

type format struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
}

// writer writes an archive aside and renames it into place whole.
type writer struct {
	dst, tmp string
	f        *os.File
	pk       *packer
	gz       *gzip.Writer
	sw       *switchWriter // where tw writes: gz, then the manifest's own stream
	tw       *tar.Writer
	members  []Member
	names    map[string]bool
	now      time.Time
}

// create starts the archive dst, root-only from its first byte. An
// existing dst is refused: a backup never replaces another.
func create(dst string, now time.Time) (*writer, error) {
	if _, err := os.Lstat(dst); err == nil {
		return nil, fmt.Errorf("%s exists: a backup does not replace another; give another name with -o, or remove it", dst)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", filepath.Dir(dst), err)
	}
	tmp := dst + ".partial"
	_ = os.Remove(tmp) // a killed run's
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, Mode)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", dst, err)
	}
	if err := f.Chmod(Mode); err != nil { // whatever the umask
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	pk := &packer{w: f, h: sha256.New()}
	gz, _ := gzip.NewWriterLevel(pk, gzip.BestSpeed)
	sw := &switchWriter{w: gz}
	w := &writer{dst: dst, tmp: tmp, f: f, pk: pk, gz: gz, sw: sw, tw: tar.NewWriter(sw), names: map[string]bool{}, now: now}
	data, _ := json.Marshal(format{FormatName, FormatVersion})
	if err := w.addBytes(FormatMember, append(data, '\n')); err != nil {
		w.abort()
		return nil, err
	}
	return w, nil
}

func (w *writer) header(name string, size int64) error {
	if w.names[name] || name == ManifestMember {
		return fmt.Errorf("archive member %q twice", name)
	}
	w.names[name] = true
	return w.tw.WriteHeader(&tar.Header{Name: name, Size: size, Mode: 0o600, ModTime: w.now, Typeflag: tar.TypeReg, Format: tar.FormatPAX})
}

func (w *writer) addBytes(name string, data []byte) error {
	if err := w.header(name, int64(len(data))); err != nil {
		return err
	}
	if _, err := w.tw.Write(data); err != nil {
		return fmt.Errorf("write %s into the backup: %w", name, err)
	}
	sum := sha256.Sum256(data)
	return w.done(Member{Name: name, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
}

// done ends member m: the tar padding and the compressor's output are
// flushed, so that m's bytes in the file end here.
func (w *writer) done(m Member) error {
	if err := w.tw.Flush(); err != nil {
		return fmt.Errorf("write %s into the backup: %w", m.Name, err)
	}
	if err := w.gz.Flush(); err != nil {
		return fmt.Errorf("write %s into the backup: %w", m.Name, err)
	}
	m.Packed = w.pk.cut()
	w.members = append(w.members, m)
	return nil
}

// addFile adds the file at path as name: exactly the size it had when
// it was opened (one that shrinks meanwhile is an error).
func (w *writer) addFile(name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("back up %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("back up %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("back up %s: not a regular file", path)
	}
	if err := w.header(name, fi.Size()); err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.CopyN(io.MultiWriter(w.tw, h), f, fi.Size())
	if err != nil {
		return fmt.Errorf("back up %s: read %d of %d bytes: %w", path, n, fi.Size(), err)
	}
	return w.done(Member{Name: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
}

// addTree adds the regular files below dir as prefix/relative-path.
// Anything else but directories (a link, a socket) is refused by name:
// a restore would not bring it back.
func (w *writer) addTree(prefix, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("back up %s: %w", dir, err)
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("back up %s: %s is a %v, not a regular file; remove it or replace it by a copy", dir, p, d.Type())
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		return w.addFile(prefix+"/"+filepath.ToSlash(rel), p)
	})
}

// finish writes the manifest, syncs and renames the archive into place.
//
// The manifest goes into a gzip stream of its own after the members'
// (a gzip file may hold several, read as one): the compressor then
// cannot build it from the members' bytes, so a change there cannot
// show as a change of the manifest.
func (w *writer) finish() (int64, error) {
	if err := w.gz.Close(); err != nil {
		return 0, fmt.Errorf("write %s: %w", w.dst, err)
	}
	m := Manifest{Format: FormatName, Version: FormatVersion, Created: w.now, Members: w.members, End: w.pk.cut()}
	m.Checksum = manifestChecksum(m)
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return 0, err
	}
	data = append(data, '\n')
	w.gz, _ = gzip.NewWriterLevel(w.pk, gzip.BestSpeed)
	w.sw.w = w.gz
	if err := w.tw.WriteHeader(&tar.Header{Name: ManifestMember, Size: int64(len(data)), Mode: 0o600, ModTime: w.now, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return 0, err
	}
	if _, err := w.tw.Write(data); err != nil {
		return 0, err
	}
	err = w.tw.Close()
	if err == nil {
		err = w.gz.Close()
	}
	if err == nil {
		err = w.f.Sync()
	}
	var size int64
	if err == nil {
		var fi fs.FileInfo
		if fi, err = w.f.Stat(); err == nil {
			size = fi.Size()
		}
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(w.tmp, w.dst)
	}
	if err != nil {
		os.Remove(w.tmp)
		return 0, fmt.Errorf("write %s: %w", w.dst, err)
	}
	if d, err := os.Open(filepath.Dir(w.dst)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return size, nil
}

func (w *writer) abort() {
	w.f.Close()
	os.Remove(w.tmp)
}

// ArchiveError is an archive refused: the member that failed, and why.
type ArchiveError struct {
	Archive string
	Member  string // "" when the archive as a whole is refused
	Err     error
}

func (e *ArchiveError) Error() string {
	if e.Member == "" {
		return fmt.Sprintf("%s: %v; nothing was changed", e.Archive, e.Err)
	}
	return fmt.Sprintf("%s: member %q: %v; nothing was changed", e.Archive, e.Member, e.Err)
}

func (e *ArchiveError) Unwrap() error { return e.Err }

// Verify reads the whole archive at path and checks every member
// against the manifest, writing nothing.
func Verify(path string) (*Manifest, error) { return read(path, "") }

// Extract verifies the archive at path as Verify does and writes its
// members below dir, which must not exist yet. On any error dir is
// removed again.
func Extract(path, dir string) (*Manifest, error) {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("unpack %s: %w", path, err)
	}
	m, err := read(path, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return m, nil
}

func read(archive, dir string) (*Manifest, error) {
	// The manifest first, then every byte before it, member by member;
	// only then the members' content, as they are unpacked.
	first, err := findManifest(archive)
	if err != nil {
		return nil, err
	}
	if first != nil {
		if err := checkPacked(archive, first); err != nil {
			return nil, err
		}
		if want := first.End.Offset + first.End.Size; first.at != want {
			return nil, &ArchiveError{Archive: archive, Member: ManifestMember, Err: fmt.Errorf("starts at byte %d of the archive, but the members it lists end at byte %d: the archive was changed", first.at, want)}
		}
	}
	m, err := walk(archive, dir)
	if err != nil {
		return nil, err
	}
	if first == nil || first.Checksum != m.Checksum {
		// Members and manifest agree, but the manifest is not the
		// archive's own last stream: not as backup wrote it.
		return nil, &ArchiveError{Archive: archive, Member: ManifestMember, Err: errors.New("is not in a gzip stream of its own at the archive's end, as bitpoll-install backup writes it: the archive was rewritten")}
	}
	return m, nil
}

// walk reads every member, unpacking it below dir unless dir is empty,
// and checks it against the manifest at the end.
func walk(archive, dir string) (*Manifest, error) {
	policy := safearchive.Policy{Limits: safearchive.Limits{Ceiling: MaxBytes, Files: MaxMembers}}
	var seen []Member
	var manifest []byte
	current, first := "", true
	refuse := func(member string, format string, args ...any) error {
		return &ArchiveError{Archive: archive, Member: member, Err: fmt.Errorf(format, args...)}
	}
	err := safearchive.Walk(archive, policy, func(m *safearchive.Member, body io.Reader) error {
		current = m.Name
		if first {
			first = false
			if m.Path != FormatMember || m.Type != safearchive.File {
				return refuse(m.Name, "this is not a bitpoll-install backup (its first member should be %q)", FormatMember)
			}
		}
		if manifest != nil {
			return refuse(m.Name, "follows the manifest, which must be the last member; the archive was changed after it was written")
		}
		if m.Type == safearchive.Dir {
			return nil
		}
		if m.Type != safearchive.File {
			return refuse(m.Name, "is a %v; a backup holds only files", m.Type)
		}
		if m.Path == FormatMember {
			data, err := io.ReadAll(io.LimitReader(body, 64<<10))
			if err != nil {
				return refuse(m.Name, "is cut short or damaged (%v): the archive is truncated or corrupt", err)
			}
			if err := checkFormat(data); err != nil {
				return refuse(m.Name, "%v", err)
			}
			body = bytes.NewReader(data)
		}
		if m.Path == ManifestMember {
			data, err := io.ReadAll(io.LimitReader(body, 64<<20))
			if err != nil {
				return refuse(m.Name, "is cut short or damaged (%v): the archive is truncated or corrupt", err)
			}
			manifest = data
			return nil
		}
		h := sha256.New()
		var out io.Writer = h
		var f *os.File
		if dir != "" {
			dst := filepath.Join(dir, filepath.FromSlash(m.Path))
			if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
				return err
			}
			var err error
			if f, err = os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
				return fmt.Errorf("unpack %s: %w", m.Name, err)
			}
			defer f.Close()
			out = io.MultiWriter(f, h)
		}
		n, err := io.Copy(out, body)
		if err != nil {
			return refuse(m.Name, "is cut short or damaged after %d bytes (%v): the archive is truncated or corrupt", n, err)
		}
		if f != nil {
			if err := f.Close(); err != nil {
				return fmt.Errorf("unpack %s: %w", m.Name, err)
			}
		}
		seen = append(seen, Member{Name: m.Path, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
		return nil
	})
	if err != nil {
		var ae *ArchiveError
		var me *safearchive.MemberError
		switch {
		case errors.As(err, &ae):
			return nil, err
		case errors.As(err, &me):
			return nil, &ArchiveError{Archive: archive, Member: me.Member, Err: me.Err}
		case first && gzipped(archive):
			return nil, refuse(FormatMember, "the archive's start cannot be read (%v): it is corrupt, or not a bitpoll-install backup", err)
		case first:
			return nil, &ArchiveError{Archive: archive, Err: fmt.Errorf("not a bitpoll-install backup: %w", err)}
		case manifest == nil:
			// Each member's content was read whole in the callback: what
			// failed is the header of the one after it.
			return nil, refuse(current, "the archive is damaged after this member, where the next one should start (%v): it is truncated or corrupt", err)
		}
		return nil, refuse(ManifestMember, "the archive is damaged after its manifest (%v)", err)
	}
	if first {
		return nil, &ArchiveError{Archive: archive, Err: errors.New("the archive is empty: not a bitpoll-install backup")}
	}
	if manifest == nil {
		return nil, refuse(current, "is the last member, and no manifest follows it: the archive is truncated (or was not written by bitpoll-install backup)")
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(manifest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, refuse(ManifestMember, "cannot be read (%v): the archive is corrupt", err)
	}
	if sum := manifestChecksum(m); sum != m.Checksum {
		return nil, refuse(ManifestMember, "its checksum is %s, but it hashes to %s: the manifest was changed", m.Checksum, sum)
	}
	if m.Format != FormatName || m.Version != FormatVersion {
		return nil, refuse(ManifestMember, "is of format %q version %d; this bitpoll-install reads %q version %d", m.Format, m.Version, FormatName, FormatVersion)
	}
	want := map[string]Member{}
	for _, x := range m.Members {
		want[x.Name] = x
	}
	got := map[string]bool{}
	for _, s := range seen {
		got[s.Name] = true
		w, ok := want[s.Name]
		switch {
		case !ok:
			return nil, refuse(s.Name, "is not in the manifest: it was added after the backup was written")
		case w.Size != s.Size:
			return nil, refuse(s.Name, "has %d bytes, the manifest says %d: it is truncated or was changed", s.Size, w.Size)
		case w.SHA256 != s.SHA256:
			return nil, refuse(s.Name, "has sha256 %s, the manifest says %s: it was changed or is corrupt", s.SHA256, w.SHA256)
		}
	}
	for _, x := range m.Members {
		if !got[x.Name] {
			return nil, refuse(x.Name, "is in the manifest but missing from the archive")
		}
	}
	return &m, nil
}

// checkPacked rehashes the archive file's bytes, member by member, and
// reads the compressed stream to its end: a change to a tar header,
// to padding or to the compressor's framing, which leaves the members'
// content as it was, is found as well, and blamed on its member. Only
// the manifest's own bytes are left to the gzip checksum and the
// manifest's.
func checkPacked(archive string, m *Manifest) error {
	ms := m.Members
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	var off int64
	buf := make([]byte, 1<<20)
	for _, x := range ms {
		if x.Packed.Offset != off || x.Packed.Size <= 0 {
			return &ArchiveError{Archive: archive, Member: x.Name, Err: fmt.Errorf("the manifest puts it at bytes %d+%d of the archive, want it at %d: the manifest was changed", x.Packed.Offset, x.Packed.Size, off)}
		}
		h := sha256.New()
		if _, err := io.CopyBuffer(h, io.LimitReader(f, x.Packed.Size), buf); err != nil {
			return fmt.Errorf("read %s: %w", archive, err)
		}
		if sum := hex.EncodeToString(h.Sum(nil)); sum != x.Packed.SHA256 {
			return &ArchiveError{Archive: archive, Member: x.Name, Err: fmt.Errorf("its bytes in the archive (%d at offset %d) have sha256 %s, the manifest says %s: the archive was changed there", x.Packed.Size, x.Packed.Offset, sum, x.Packed.SHA256)}
		}
		off += x.Packed.Size
	}
	if len(ms) > 0 {
		last := ms[len(ms)-1].Name
		h := sha256.New()
		if m.End.Offset != off {
			return &ArchiveError{Archive: archive, Member: last, Err: fmt.Errorf("the manifest puts the end of the members' stream at byte %d, want %d: the manifest was changed", m.End.Offset, off)}
		}
		if _, err := io.CopyBuffer(h, io.LimitReader(f, m.End.Size), buf); err != nil {
			return fmt.Errorf("read %s: %w", archive, err)
		}
		if sum := hex.EncodeToString(h.Sum(nil)); sum != m.End.SHA256 {
			return &ArchiveError{Archive: archive, Member: last, Err: fmt.Errorf("the end of the members' compressed stream after it (%d bytes at offset %d) has sha256 %s, the manifest says %s: the archive was changed there", m.End.Size, m.End.Offset, sum, m.End.SHA256)}
		}
	}
	return nil
}

// manifestScan bounds how far from its end findManifest looks for the
// manifest's stream.
const manifestScan = 1 << 30

// findManifest reads the manifest first, from its own gzip stream at the
// archive's end, and checks it whole: its checksum, its format, that it
// starts where the members' stream ends and that nothing follows it. It
// returns nil when the archive has no readable manifest stream (a
// truncated or foreign file): reading the members then says where it
// fails.
func findManifest(archive string) (*Manifest, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	low := max(size-manifestScan, 0)
	const chunk = 1 << 20
	buf := make([]byte, chunk+2)
	damaged := error(nil)
	for end := size; end > low; end -= chunk {
		start := max(end-chunk, low)
		n, err := f.ReadAt(buf[:min(end+2, size)-start], start)
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("read %s: %w", archive, err)
		}
		for i := n - 3; i >= 0; i-- {
			if buf[i] != 0x1f || buf[i+1] != 0x8b || buf[i+2] != 0x08 || start+int64(i) >= end {
				continue
			}
			m, err := manifestAt(archive, f, start+int64(i), size)
			if m != nil || err != nil && damaged == nil && !errors.Is(err, errNoManifest) {
				if m != nil {
					return m, nil
				}
				damaged = err
			}
		}
	}
	if ae := (*ArchiveError)(nil); errors.As(damaged, &ae) {
		return nil, damaged
	}
	return nil, nil
}

var errNoManifest = errors.New("no manifest here")

// manifestAt reads the gzip stream at pos as the manifest's. It returns
// errNoManifest when the stream there does not start with the manifest,
// and an *ArchiveError when it does but is wrong.
func manifestAt(archive string, f *os.File, pos, size int64) (*Manifest, error) {
	br := bufio.NewReader(io.NewSectionReader(f, pos, size-pos))
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, errNoManifest
	}
	zr.Multistream(false)
	tr := tar.NewReader(zr)
	h, err := tr.Next()
	if err != nil || h.Name != ManifestMember {
		return nil, errNoManifest
	}
	refuse := func(format string, args ...any) error {
		return &ArchiveError{Archive: archive, Member: ManifestMember, Err: fmt.Errorf(format, args...)}
	}
	data, err := io.ReadAll(io.LimitReader(tr, manifestScan))
	if err != nil {
		return nil, refuse("cannot be read at byte %d (%v): the archive is truncated or corrupt", pos, err)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, refuse("cannot be read (%v): the archive is corrupt", err)
	}
	if sum := manifestChecksum(m); sum != m.Checksum {
		return nil, refuse("its checksum is %s, but it hashes to %s: the manifest was changed", m.Checksum, sum)
	}
	if m.Format != FormatName || m.Version != FormatVersion {
		return nil, refuse("is of format %q version %d; this bitpoll-install reads %q version %d", m.Format, m.Version, FormatName, FormatVersion)
	}
	m.at = pos
	if _, err := tr.Next(); err != io.EOF {
		return nil, refuse("is followed by more members (%v); it must be the last", err)
	}
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return nil, refuse("its stream is damaged (%v): the archive is corrupt", err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return nil, refuse("is followed by more data: the archive was changed after it was written")
	}
	return &m, nil
}

// checkFormat checks what the first member says the archive is.
func checkFormat(data []byte) error {
	var f format
	if err := json.Unmarshal(data, &f); err != nil || f.Format != FormatName {
		return fmt.Errorf("this is not a bitpoll-install backup (%s does not say %q)", FormatMember, FormatName)
	}
	if f.Version != FormatVersion {
		return fmt.Errorf("a backup of format version %d; this bitpoll-install reads version %d: use a bitpoll-install that reads it", f.Version, FormatVersion)
	}
	return nil
}

// gzipped reports whether the file at path starts as a gzip stream.
func gzipped(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	magic := make([]byte, 2)
	_, err = io.ReadFull(f, magic)
	return err == nil && magic[0] == 0x1f && magic[1] == 0x8b
}
