// Package wheel installs one wheel file into one Python environment layout,
// following the binary distribution format (PEP 427): the root goes to
// purelib or platlib, the .data directories to their scheme directories,
// entry points become launcher scripts, and RECORD is checked while the
// members are written.
//
// Hostile wheels are refused before or during unpacking, and every file and
// directory created so far is removed again. A crash mid-install can still
// leave files behind, so callers build environments under a temporary name
// and rename them into place. Finding the interpreter and creating the
// environment are the job of the parent package.
package wheel

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"

	"github.com/bitpoll-install/bitpoll-install/safearchive"
)

// Limits applied when Options leaves them zero: safearchive's, the same
// as for sdists and source archives.
const (
	// DefaultMaxRatio bounds the total uncompressed size to this many
	// times the wheel file's size.
	DefaultMaxRatio = safearchive.DefaultRatio
	// DefaultMaxSize is the total uncompressed size allowed for one wheel.
	DefaultMaxSize = safearchive.DefaultCeiling
	// DefaultMaxFiles is the number of zip members allowed for one wheel.
	DefaultMaxFiles = safearchive.DefaultFiles
)

// MaxMetadataSize bounds WHEEL, RECORD and entry_points.txt, which are read
// into memory.
const MaxMetadataSize = 32 << 20

// Scheme gives the absolute directories of an environment, as sysconfig
// names them. Headers is the directory for this distribution's C headers
// (pip uses <venv>/include/site/pythonX.Y/<name>); Data is the venv root.
type Scheme struct {
	Purelib, Platlib, Scripts, Headers, Data string
}

// Options controls one install.
type Options struct {
	// Python is the absolute interpreter path written into shebangs; it is
	// needed only by wheels with scripts or entry points.
	Python string
	// Installer is written to the dist-info INSTALLER file; empty writes none.
	Installer string
	// MaxRatio bounds the total uncompressed size to this many times the
	// wheel file's size, DefaultMaxRatio if 0; MaxSize bounds it whatever
	// the file's size. Both are checked before anything is written.
	MaxRatio int64
	// MaxSize is the total uncompressed size allowed, DefaultMaxSize if 0.
	MaxSize int64
	// MaxFiles is the number of members allowed, DefaultMaxFiles if 0.
	MaxFiles int
	// Unpacked names a directory made by Unpack from the same wheel. Files
	// are then copied from it instead of being decompressed again, each
	// checked against the wheel's RECORD as it is copied: a damaged copy
	// fails the install with ErrDamaged, and the environment never shares
	// an inode with the unpacked tree, so later damage to the tree cannot
	// reach it either.
	Unpacked string
	// UnpackTo names a directory that does not exist yet. Install then
	// unpacks the wheel there, as Unpack would, and copies each file from
	// it as soon as it is written: one decompression where Unpack then
	// Install would make two. It excludes Unpacked.
	UnpackTo string
	// Placed, when set, is called with the destination of each member
	// once it is in place, from several goroutines at once, so that work
	// on the file (compiling it) can start while others are written.
	Placed func(path string)
	// Workers is how many members are written at once; 0 means
	// runtime.GOMAXPROCS(0). Creating files and directories costs kernel
	// time that parallel writers share out over the cores.
	Workers int
}

// Result describes an installed distribution.
type Result struct {
	Name, Version string // as spelled in the .dist-info directory name
	// Files are the installed files, slash-separated and relative to
	// Scheme.Data (the venv root), sorted; RECORD and INSTALLER included.
	Files []string
}

// Categories of refusal, for errors.Is. Each comes wrapped in a
// *MemberError when one member is at fault.
var (
	ErrUnsafe = errors.New("unsafe wheel")
	ErrRecord = errors.New("RECORD mismatch")
	ErrLimit  = errors.New("limit exceeded")
	ErrExists = errors.New("file exists")
	// ErrDamaged is an Options.Unpacked tree that no longer holds what
	// the wheel's RECORD says: a file changed, went missing or RECORD
	// itself differs. The wheel is not at fault; the tree is, and the
	// caller should delete it and unpack the wheel again.
	ErrDamaged = errors.New("unpacked tree damaged")
)

// MemberError is a problem with one member of the wheel (or one generated
// file, named by its path in the scripts directory).
type MemberError struct {
	Member string
	Err    error
}

func (e *MemberError) Error() string { return fmt.Sprintf("member %q: %v", e.Member, e.Err) }
func (e *MemberError) Unwrap() error { return e.Err }

func memberErr(name string, kind error, format string, args ...any) error {
	return &MemberError{Member: name, Err: fmt.Errorf("%w: %s", kind, fmt.Sprintf(format, args...))}
}

func (s Scheme) check() error {
	for _, d := range []struct{ field, dir string }{
		{"Purelib", s.Purelib}, {"Platlib", s.Platlib}, {"Scripts", s.Scripts},
		{"Headers", s.Headers}, {"Data", s.Data},
	} {
		if !filepath.IsAbs(d.dir) {
			return fmt.Errorf("scheme directory %s is %q, want an absolute path", d.field, d.dir)
		}
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.MaxRatio <= 0 {
		o.MaxRatio = DefaultMaxRatio
	}
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = DefaultMaxFiles
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	return o
}
