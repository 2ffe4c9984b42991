package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/bitpoll-install/bitpoll-install/treehash"
	"github.com/bitpoll-install/bitpoll-install/workers"
)

// The kinds of a Finding.
const (
	FindChanged  = "changed"  // a file's content or size differs from its record
	FindMode     = "mode"     // an entry's permission bits differ
	FindType     = "type"     // an entry is of another type (a file became a symlink...)
	FindTarget   = "target"   // a symlink points elsewhere
	FindMissing  = "missing"  // a recorded entry is gone
	FindAdded    = "added"    // an entry that was not recorded
	FindUnsealed = "unsealed" // the store path has no seal record
	FindDamaged  = "damaged"  // the seal record cannot be read or fails its checksum
)

// Finding is one difference between a store path and its seal record.
type Finding struct {
	StorePath string `json:"store_path"`
	// Path is relative to the store path, slash-separated; "." is the
	// store path itself.
	Path string `json:"path"`
	Kind string `json:"kind"`
	Want string `json:"want,omitempty"`
	Got  string `json:"got,omitempty"`
	// Detail says more, for unsealed and damaged store paths.
	Detail string `json:"detail,omitempty"`
}

func (f Finding) String() string {
	p := filepath.Join(f.StorePath, filepath.FromSlash(f.Path))
	switch f.Kind {
	case FindMissing, FindAdded:
		return fmt.Sprintf("%s: %s", f.Kind, p)
	case FindUnsealed, FindDamaged:
		return fmt.Sprintf("%s: %s: %s", f.Kind, p, f.Detail)
	}
	return fmt.Sprintf("%s: %s: recorded %s, found %s", f.Kind, p, f.Want, f.Got)
}

// CheckOptions say how much content Check rehashes.
type CheckOptions struct {
	// Sample is the percentage of the store's files, by count and by
	// bytes, whose content is rehashed this run; 0 or 100 and above
	// rehash everything. Types, modes, sizes, symlink targets and missing
	// or added entries are checked in full whatever it says: that takes
	// only a walk.
	Sample float64
	// Start is where the sample begins: the Next of the previous run. A
	// start that is no longer in the store begins at the next file after
	// it, so that successive runs cover every file even as store paths
	// come and go.
	Start string
}

// CheckResult is what Check looked at and found.
type CheckResult struct {
	StorePaths  int     `json:"store_paths"`
	Files       int     `json:"files"` // files recorded, in all sealed store paths
	Bytes       int64   `json:"bytes"`
	HashedFiles int     `json:"hashed_files"`
	HashedBytes int64   `json:"hashed_bytes"`
	Sample      float64 `json:"sample_percent"`
	// Next is where the next sampled run should start.
	Next     string    `json:"next,omitempty"`
	Findings []Finding `json:"findings"`
}

// sampleFile is a recorded file whose content may be rehashed.
type sampleFile struct {
	key       string // <store path name>/<path>, the sample's order
	storePath string
	entry     SealEntry
	hash      bool // its type, size and mode match, so its content is worth hashing
}

// Check rehashes the content of every sealed store path against its
// seal record (or a rolling sample of it, see CheckOptions), and reports
// every changed, missing or added entry, as `nix store verify
// --check-contents` does. Store paths without a record are reported as
// unsealed. Unfinished builds are skipped. The caller should hold Lock,
// so that gc does not remove a store path while it is read.
func (s *Store) Check(ctx context.Context, o CheckOptions) (*CheckResult, error) {
	r, err := s.check(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("check store %s: %w", s.layout.StoreDir(), err)
	}
	return r, nil
}

func (s *Store) check(ctx context.Context, o CheckOptions) (*CheckResult, error) {
	dirents, err := os.ReadDir(s.layout.StoreDir())
	if err != nil {
		return nil, err
	}
	r := &CheckResult{Sample: o.Sample, Findings: []Finding{}}
	if r.Sample <= 0 || r.Sample > 100 {
		r.Sample = 100
	}
	var files []sampleFile
	for _, d := range dirents {
		name := d.Name()
		if !d.IsDir() || strings.Contains(name, partialInfix) || len(name) <= KeyLen || name[KeyLen] != '-' || !validKey(name[:KeyLen]) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		path := filepath.Join(s.layout.StoreDir(), name)
		r.StorePaths++
		found, pathFiles, err := checkStructure(path)
		if err != nil {
			return nil, err
		}
		r.Findings = append(r.Findings, found...)
		files = append(files, pathFiles...)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].key < files[j].key })
	for _, f := range files {
		r.Files++
		r.Bytes += f.entry.Size
	}
	todo, next := window(files, r.Bytes, r.Sample, o.Start)
	r.Next = next
	var mu sync.Mutex
	err = workers.ForEach(len(todo), runtime.GOMAXPROCS(0), func(i int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		f := todo[i]
		mu.Lock()
		r.HashedFiles++
		r.HashedBytes += f.entry.Size
		mu.Unlock()
		if !f.hash {
			return nil // already reported by its structure
		}
		sum, n, err := treehash.FileSHA256(filepath.Join(f.storePath, filepath.FromSlash(f.entry.name())))
		if errors.Is(err, os.ErrNotExist) {
			return nil // removed since the walk: the next run says so
		}
		if err != nil {
			return err
		}
		if sum != f.entry.SHA256 || n != f.entry.Size {
			mu.Lock()
			r.Findings = append(r.Findings, Finding{StorePath: f.storePath, Path: f.entry.name(), Kind: FindChanged,
				Want: fmt.Sprintf("sha256 %s (%d bytes)", f.entry.SHA256, f.entry.Size), Got: fmt.Sprintf("sha256 %s (%d bytes)", sum, n)})
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(r.Findings, func(i, j int) bool {
		a, b := r.Findings[i], r.Findings[j]
		if a.StorePath != b.StorePath {
			return a.StorePath < b.StorePath
		}
		return a.Path < b.Path
	})
	return r, nil
}

// window picks the files to hash: from the first whose key is at or
// after start, in key order and wrapping around, until both sample
// percent of the files and of the bytes are taken. It returns them and
// the key to start from next time.
func window(files []sampleFile, total int64, sample float64, start string) ([]sampleFile, string) {
	if sample >= 100 || len(files) == 0 {
		return files, ""
	}
	first := sort.Search(len(files), func(i int) bool { return files[i].key >= start })
	if first == len(files) {
		first = 0
	}
	wantBytes := int64(math.Ceil(float64(total) * sample / 100))
	wantFiles := int(math.Ceil(float64(len(files)) * sample / 100))
	var todo []sampleFile
	var got int64
	i := first
	for len(todo) < len(files) && (got < wantBytes || len(todo) < wantFiles) {
		todo = append(todo, files[i])
		got += files[i].entry.Size
		i = (i + 1) % len(files)
	}
	return todo, files[i].key
}

// checkStructure compares the store path at path with its seal record,
// short of hashing content, and returns what differs and the recorded
// files.
func checkStructure(path string) ([]Finding, []sampleFile, error) {
	base := filepath.Base(path)
	seal, err := ReadSeal(path)
	if errors.Is(err, ErrUnsealed) {
		return []Finding{{StorePath: path, Path: ".", Kind: FindUnsealed, Detail: ErrUnsealed.Error()}}, nil, nil
	}
	if err != nil {
		return []Finding{{StorePath: path, Path: SealFile, Kind: FindDamaged, Detail: err.Error()}}, nil, nil
	}
	var found []Finding
	if info, err := os.Lstat(filepath.Join(path, SealFile)); err == nil && modeString(info.Mode()) != "0444" {
		found = append(found, Finding{StorePath: path, Path: SealFile, Kind: FindMode, Want: "0444", Got: modeString(info.Mode())})
	}
	actual, err := scanTree(path)
	if err != nil {
		return nil, nil, err
	}
	want := seal.Entries
	sortEntries(want) // a record is written sorted; this keeps the merge right if one is not
	var files []sampleFile
	i, j := 0, 0
	for i < len(want) || j < len(actual) {
		switch {
		case j == len(actual) || i < len(want) && want[i].name() < actual[j].name():
			found = append(found, Finding{StorePath: path, Path: want[i].name(), Kind: FindMissing})
			i++
			continue
		case i == len(want) || actual[j].name() < want[i].name():
			found = append(found, Finding{StorePath: path, Path: actual[j].name(), Kind: FindAdded})
			j++
			continue
		}
		w, a := want[i], actual[j]
		i, j = i+1, j+1
		f := Finding{StorePath: path, Path: w.name()}
		hash := true
		switch {
		case w.Type != a.Type:
			f.Kind, f.Want, f.Got = FindType, w.Type, a.Type
			found = append(found, f)
			hash = false
		case w.Type == TypeSymlink:
			if w.Target != a.Target {
				f.Kind, f.Want, f.Got = FindTarget, w.Target, a.Target
				found = append(found, f)
			}
		default:
			if w.Mode != a.Mode {
				m := f
				m.Kind, m.Want, m.Got = FindMode, w.Mode, a.Mode
				found = append(found, m)
			}
			if w.Type == TypeFile && w.Size != a.Size {
				f.Kind, f.Want, f.Got = FindChanged, fmt.Sprintf("%d bytes", w.Size), fmt.Sprintf("%d bytes", a.Size)
				found = append(found, f)
				hash = false
			}
		}
		if w.Type == TypeFile {
			files = append(files, sampleFile{key: base + "/" + w.name(), storePath: path, entry: w, hash: hash})
		}
	}
	return found, files, nil
}
