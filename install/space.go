package install

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"syscall"

	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/progress"
)

// Space a build needs, estimated from the lock's sizes before it starts.
const (
	// UnpackFactor bounds what a wheel takes unpacked, with its bytecode,
	// as a multiple of its size: real wheels unpack to 3 to 5 times it.
	UnpackFactor = 5
	// AppAllowance is the room left for the app tree, its collected and
	// compressed static files and its compiled translations.
	AppAllowance = 64 << 20
)

// SpaceError refuses a build that would not fit on its file system.
type SpaceError struct {
	Mount string   // the file system's mount point
	Paths []string // what of the build lies on it
	Need  int64
	Free  int64
	What  string // "bitpoll 0.11.0"
}

func (e *SpaceError) Error() string {
	return fmt.Sprintf("not enough space to build %s: the file system at %s (holding %s) has %s free, and the build needs about %s (%d times the locked wheels' size, their downloads, and the app); "+
		"free space there (bitpoll-install gc removes old generations and unused cache entries) or install onto a larger file system, and run it again",
		e.What, e.Mount, joinAnd(e.Paths), progress.FormatBytes(e.Free), progress.FormatBytes(e.Need), UnpackFactor)
}

// NoSpaceError is a write that found its file system full.
type NoSpaceError struct {
	Path  string // the file being written
	Mount string // the mount point of its file system
	Free  int64  // bytes free there now
	Err   error
}

func (e *NoSpaceError) Error() string {
	return fmt.Sprintf("the file system at %s is full (%s free) while writing %s: free space there (bitpoll-install gc removes old generations and unused cache entries) and run it again; nothing was switched (%v)",
		e.Mount, progress.FormatBytes(e.Free), e.Path, e.Err)
}

func (e *NoSpaceError) Unwrap() error { return e.Err }

// NoSpace returns err as a *NoSpaceError, naming the file being written
// and its file system, when err comes from a full disk (ENOSPC, or a
// Python program's "[Errno 28]"); otherwise err itself.
func NoSpace(err error) error {
	var ns *NoSpaceError
	if err == nil || !errors.Is(err, syscall.ENOSPC) || errors.As(err, &ns) {
		return err
	}
	path := ""
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		path = pe.Path
	case errors.As(err, &le):
		path = le.New
	}
	e := &NoSpaceError{Path: path, Err: err}
	if path != "" {
		if free, mount, serr := freeSpace(path); serr == nil {
			e.Free, e.Mount = free, mount
		}
	}
	if e.Mount == "" {
		e.Mount, e.Path = "(unknown)", orUnknown(path)
	}
	return e
}

func orUnknown(s string) string {
	if s == "" {
		return "(a file)"
	}
	return s
}

// pythonNoSpace matches Python's message for a full disk, with the path
// when it names one.
var pythonNoSpace = regexp.MustCompile(`\[Errno 28\] No space left on device(?:: '([^']*)')?`)

// pythonFailure is the error of a Python program that failed with output
// out: a full disk becomes an ENOSPC error for the path Python names (or
// else writes, what the program writes), without the traceback; anything
// else keeps the output's tail.
func pythonFailure(what, writes string, err error, out []byte) error {
	if m := pythonNoSpace.FindSubmatch(out); m != nil {
		path := string(m[1])
		if path == "" {
			path = writes
		}
		return fmt.Errorf("%s: %w", what, &fs.PathError{Op: "write", Path: path, Err: syscall.ENOSPC})
	}
	return fmt.Errorf("%s: %w\n%s", what, err, tail(out))
}

// freeSpace is the space free to unprivileged writers on the file system
// of path (or of its nearest existing parent), and that file system's
// mount point.
func freeSpace(path string) (int64, string, error) {
	p := filepath.Clean(path)
	for {
		if _, err := os.Stat(p); err == nil {
			break
		}
		parent := filepath.Dir(p)
		if parent == p {
			return 0, "", fmt.Errorf("no part of %s exists", path)
		}
		p = parent
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(p, &st); err != nil {
		return 0, "", fmt.Errorf("statfs %s: %w", p, err)
	}
	return int64(st.Bavail) * st.Bsize, mountPoint(p), nil
}

// mountPoint is the top directory of path's file system: the highest
// ancestor on the same device.
func mountPoint(path string) string {
	dev := func(p string) (uint64, bool) {
		fi, err := os.Stat(p)
		if err != nil {
			return 0, false
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		return uint64(st.Dev), ok
	}
	d, ok := dev(path)
	if !ok {
		return path
	}
	for {
		parent := filepath.Dir(path)
		if parent == path {
			return path
		}
		if pd, ok := dev(parent); !ok || pd != d {
			return path
		}
		path = parent
	}
}

// checkSpace refuses a build of sel into store that would not fit: the
// store path takes about UnpackFactor times the wheels plus the app, and
// the cache what is not downloaded and unpacked yet.
func checkSpace(what, store, cache string, sel []lockfile.Selected, cached func(sha256 string) bool) error {
	var wheels, missing int64
	for _, s := range sel {
		wheels += s.File.Size
		if !cached(s.File.SHA256) {
			missing += s.File.Size
		}
	}
	type need struct {
		paths []string
		bytes int64
		free  int64
	}
	byMount := map[string]*need{}
	var order []string
	add := func(path string, n int64) error {
		free, mount, err := freeSpace(path)
		if err != nil {
			return err
		}
		if byMount[mount] == nil {
			byMount[mount] = &need{free: free}
			order = append(order, mount)
		}
		byMount[mount].paths = append(byMount[mount].paths, path)
		byMount[mount].bytes += n
		return nil
	}
	if err := add(store, UnpackFactor*wheels+AppAllowance); err != nil {
		return nil // nothing to measure; the build's own errors will tell
	}
	if err := add(cache, (1+UnpackFactor)*missing); err != nil {
		return nil
	}
	for _, m := range order {
		if n := byMount[m]; n.bytes > n.free {
			return &SpaceError{Mount: m, Paths: n.paths, Need: n.bytes, Free: n.free, What: what}
		}
	}
	return nil
}

func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	out := s[0]
	for _, x := range s[1 : len(s)-1] {
		out += ", " + x
	}
	return out + " and " + s[len(s)-1]
}
