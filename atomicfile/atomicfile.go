// Package atomicfile replaces files so that a reader, or a crash, finds
// the old content or the new, never a mix, and makes directory changes
// durable.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Write replaces path with data and mode: a temporary file beside it is
// written and synced, renamed over path, and the directory synced so that
// the rename survives a power loss. On failure path is unchanged and the
// temporary file is gone. A crash leaves path old or new, never a mix,
// and may leave the temporary file, whose name carries the writer's
// process id (see TempPID).
func Write(path string, data []byte, mode fs.FileMode) error {
	return WriteSteps(path, data, mode, nil)
}

// Step is a point inside WriteSteps, where tests kill the writer.
type Step string

const (
	TempCreated Step = "temp-created" // the temporary file exists, empty
	TempWritten Step = "temp-written" // it holds data, synced and closed; path is unchanged
	Renamed     Step = "renamed"      // path holds data; the directory is not yet synced
)

// WriteSteps is Write, calling at (when not nil) at each Step.
func WriteSteps(path string, data []byte, mode fs.FileMode, at func(Step)) error {
	return write(path, mode, func(w io.Writer) error { _, err := w.Write(data); return err }, at)
}

// WriteWith is Write for content too large to hold: fill streams it.
// When fill fails, path is unchanged.
func WriteWith(path string, mode fs.FileMode, fill func(w io.Writer) error) error {
	return write(path, mode, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		if err := fill(bw); err != nil {
			return err
		}
		return bw.Flush()
	}, nil)
}

func write(path string, mode fs.FileMode, fill func(w io.Writer) error, at func(Step)) error {
	if at == nil {
		at = func(Step) {}
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-"+strconv.Itoa(os.Getpid())+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // nothing left to remove after the rename
	at(TempCreated)
	if err := fill(f); err != nil {
		f.Close()
		return err
	}
	if err := errors.Join(f.Chmod(mode), f.Sync(), f.Close()); err != nil {
		return err
	}
	at(TempWritten)
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	at(Renamed)
	return SyncDir(dir)
}

// TempPID is the id of the process that made name, a temporary file of
// Write (".settings.json.tmp-PID-RANDOM"), if name is one.
func TempPID(name string) (int, bool) {
	_, rest, ok := strings.Cut(name, ".tmp-")
	if !ok || !strings.HasPrefix(name, ".") {
		return 0, false
	}
	digits, _, ok := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(digits)
	if !ok || err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// SyncDir makes the creations, removals and renames inside dir durable.
func SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %q: %w", dir, err)
	}
	return nil
}
