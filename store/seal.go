package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"unicode/utf8"

	"github.com/bitpoll-install/bitpoll-install/treehash"
	"github.com/bitpoll-install/bitpoll-install/workers"
)

// SealFile is the record of a store path's content, written into it when
// it is sealed, after MarkerFile and the read-only modes: every entry's
// path, type and mode, and each file's size and sha256 or each symlink's
// target. Check rehashes a store path against it. It does not list itself.
// Store paths built before it existed lack it; Verify does not ask for it,
// so they stay usable, and Check reports them as unsealed.
const SealFile = ".bitpoll-store-seal.json"

// SealVersion is the version of SealFile's format.
const SealVersion = 1

// Entry types in a Seal.
const (
	TypeFile    = "file"
	TypeDir     = "dir"
	TypeSymlink = "symlink"
)

// SealEntry is one entry of a store path.
type SealEntry struct {
	// Path is slash-separated and relative to the store path; "." is the
	// store path itself. A name that is not UTF-8 is in PathHex instead,
	// as hex, since JSON strings cannot hold it.
	Path    string `json:"path,omitempty"`
	PathHex string `json:"path_hex,omitempty"`
	Type    string `json:"type"`
	// Mode is the permission bits in octal ("0444"); not for symlinks,
	// whose mode Linux ignores.
	Mode   string `json:"mode,omitempty"`
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Target string `json:"target,omitempty"`
}

// name is the entry's path as the file system spells it.
func (e SealEntry) name() string {
	if e.PathHex != "" {
		b, err := hex.DecodeString(e.PathHex)
		if err == nil {
			return string(b)
		}
	}
	return e.Path
}

// Seal is the content of SealFile. Checksum is the sha256 of Entries as
// JSON, so that a damaged record is told apart from damaged content, as
// pg_verifybackup's manifest checksum does.
type Seal struct {
	Version  int         `json:"version"`
	Entries  []SealEntry `json:"entries"`
	Checksum string      `json:"checksum"`
}

func entriesChecksum(entries []SealEntry) (string, error) {
	b, err := json.Marshal(entries)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// writeSeal records the content of the sealed tree at root in SealFile.
func writeSeal(root string) error {
	entries, err := scanTree(root)
	if err != nil {
		return err
	}
	var files []int
	for i, e := range entries {
		if e.Path == "." {
			e.Mode = modeString(0o555) // the root is made read-only right after
			entries[i] = e
		}
		if e.Type == TypeFile {
			files = append(files, i)
		}
	}
	err = workers.ForEach(len(files), runtime.GOMAXPROCS(0), func(i int) error {
		e := &entries[files[i]]
		sum, n, err := treehash.FileSHA256(filepath.Join(root, e.name()))
		if err != nil {
			return err
		}
		if n != e.Size {
			return fmt.Errorf("%q changed size while being sealed", e.name())
		}
		e.SHA256 = sum
		return nil
	})
	if err != nil {
		return err
	}
	s := Seal{Version: SealVersion, Entries: entries}
	if s.Checksum, err = entriesChecksum(entries); err != nil {
		return err
	}
	var buf bytes.Buffer
	// One entry a line keeps the record readable and diffable.
	fmt.Fprintf(&buf, "{\"version\":%d,\"entries\":[\n", s.Version)
	for i, e := range entries {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		buf.Write(b)
		if i < len(entries)-1 {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
	}
	fmt.Fprintf(&buf, "],\"checksum\":%q}\n", s.Checksum)
	f, err := os.OpenFile(filepath.Join(root, SealFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("write seal record (the build must not create %q): %w", SealFile, err)
	}
	_, err = f.Write(buf.Bytes())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write seal record: %w", err)
	}
	return os.Chmod(filepath.Join(root, SealFile), 0o444) // whatever the umask did
}

// scanTree lists the entries under root, SealFile excepted, in path
// order, with everything but the files' hashes.
func scanTree(root string) ([]SealEntry, error) {
	var entries []SealEntry
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if rel == SealFile {
			return nil
		}
		e, err := describe(p, filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortEntries(entries)
	return entries, nil
}

func sortEntries(entries []SealEntry) {
	sort.Slice(entries, func(i, j int) bool { return entries[i].name() < entries[j].name() })
}

// describe returns the entry of the file at p, whose relative path is
// rel, without its hash.
func describe(p, rel string) (SealEntry, error) {
	info, err := os.Lstat(p)
	if err != nil {
		return SealEntry{}, err
	}
	e := SealEntry{Path: rel}
	if !utf8.ValidString(rel) {
		e = SealEntry{PathHex: hex.EncodeToString([]byte(rel))}
	}
	m := info.Mode()
	switch {
	case m.IsRegular():
		e.Type, e.Size = TypeFile, info.Size()
	case m.IsDir():
		e.Type = TypeDir
	case m&fs.ModeSymlink != 0:
		e.Type = TypeSymlink
		if e.Target, err = os.Readlink(p); err != nil {
			return SealEntry{}, err
		}
		return e, nil
	default:
		return SealEntry{}, fmt.Errorf("%q is a %v; only files, directories and symlinks may be stored", p, m.Type())
	}
	e.Mode = modeString(m)
	return e, nil
}

// modeString is the permission and special bits in octal, like "0444".
func modeString(m fs.FileMode) string {
	v := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return fmt.Sprintf("%04o", v)
}

// ErrUnsealed is a store path without a SealFile: one built before seal
// records existed.
var ErrUnsealed = errors.New("it has no seal record: it was built before bitpoll-install recorded one, so there is nothing to check its content against; build it anew (remove it once no kept generation uses it, e.g. after an upgrade and gc)")

// ReadSeal reads and checks the seal record of the store path at path.
func ReadSeal(path string) (*Seal, error) {
	p := filepath.Join(path, SealFile)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read seal record of %s: %w", path, ErrUnsealed)
	}
	if err != nil {
		return nil, fmt.Errorf("read seal record: %w", err)
	}
	var s Seal
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("read seal record %s: %w (the record is damaged: its store path cannot be checked; build it anew)", p, err)
	}
	if s.Version != SealVersion {
		return nil, fmt.Errorf("read seal record %s: version %d, want %d (written by a newer bitpoll-install? use that one)", p, s.Version, SealVersion)
	}
	sum, err := entriesChecksum(s.Entries)
	if err != nil {
		return nil, err
	}
	if sum != s.Checksum {
		return nil, fmt.Errorf("read seal record %s: checksum %s, but its entries hash to %s (the record is damaged: its store path cannot be checked; build it anew)", p, s.Checksum, sum)
	}
	return &s, nil
}
