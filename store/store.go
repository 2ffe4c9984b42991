// Package store keeps Bitpoll builds in an input-addressed store and
// points generations at them, as DESIGN.md lays out under "The store and
// generations (FHS)". A store path is built aside under a .partial name,
// made read-only, synced and renamed into place, so a crash at any point
// leaves either no path or a complete one. Sealing records every entry's
// mode, size and sha256 (SealFile), which Check rehashes later.
// Generations are numbered symlinks into the store, and `current` moves
// between them by rename(2).
//
// The package does not know what goes into a store path; the caller's
// build function fills it.
package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// MarkerFile is written into a store path last, holding its key, before
// the rename that publishes it. Build refuses a build that creates it.
const MarkerFile = ".bitpoll-store-complete"

// partialInfix separates a store path's name from the random suffix of
// its build directory.
const partialInfix = ".partial-"

// lockRetry is how often Lock retries a held lock.
const lockRetry = 50 * time.Millisecond

// Phase names a point in Build, AddGeneration and Switch at which Hooks.At
// is called.
type Phase string

const (
	PhaseBuilt     Phase = "built"     // build func returned; path is the .partial dir, not yet sealed
	PhaseSealed    Phase = "sealed"    // marker and seal record written, tree read-only and synced; not yet renamed
	PhaseStored    Phase = "stored"    // renamed into place and store dir synced; path is final
	PhaseLinked    Phase = "linked"    // generation symlink created and synced; path is the link
	PhaseSwitching Phase = "switching" // temporary current link made; not yet renamed over current
	PhaseSwitched  Phase = "switched"  // current replaced and its directory synced
)

// Hooks lets tests stop the process at exact points to prove crash
// safety. All fields are nil in production.
type Hooks struct {
	// At is called at each Phase with the path the phase concerns.
	At func(p Phase, path string)
}

// Call calls At, if set; packages that build into the store report their
// own phases through it too.
func (h Hooks) Call(p Phase, path string) {
	if h.At != nil {
		h.At(p, path)
	}
}

// Store is a store and its generations inside one Layout.
type Store struct {
	layout Layout
	Hooks  Hooks
}

// Open returns the store of l, creating its store and generations
// directories (0755) if needed. It takes no lock; see Lock.
func Open(l Layout) (*Store, error) {
	for _, d := range []string{l.StoreDir(), l.GenerationsDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	return &Store{layout: l}, nil
}

// Layout returns the layout the store was opened with.
func (s *Store) Layout() Layout { return s.layout }

// Lock takes the store's exclusive lock (<store>/.lock), waiting until it
// is free or ctx is done. Builds, generation changes and gc must hold it.
// The holder's process id is written into the lock file so that a waiter
// can say who it waits for. The kernel drops the lock when its holder
// dies, so a killed process never leaves it held.
func (s *Store) Lock(ctx context.Context) (unlock func() error, err error) {
	return s.LockWith(ctx, LockOptions{})
}

// LockOptions say how to wait for the store lock.
type LockOptions struct {
	// NoWait fails at once when another process holds the lock.
	NoWait bool
	// Waiting, if set, is called once, with the holder's pid (0 when
	// unknown), when the lock is held by another process.
	Waiting func(pid int)
}

// LockWith is Lock with options.
func (s *Store) LockWith(ctx context.Context, o LockOptions) (unlock func() error, err error) {
	path := filepath.Join(s.layout.StoreDir(), ".lock")
	fl := flock.New(path, flock.SetPermissions(0o644))
	ok, err := fl.TryLock()
	if err == nil && !ok {
		pid := lockHolder(path)
		if o.NoWait {
			return nil, fmt.Errorf("lock store %q: %w", path, &HeldError{PID: pid})
		}
		if o.Waiting != nil {
			o.Waiting(pid)
		}
		ok, err = fl.TryLockContext(ctx, lockRetry)
	}
	if err != nil || !ok {
		if err == nil {
			err = ctx.Err()
		}
		if pid := lockHolder(path); pid > 0 && ctx.Err() != nil {
			return nil, fmt.Errorf("lock store %q: held by process %d (another bitpoll-install is running; wait for it to finish): %w", path, pid, err)
		}
		return nil, fmt.Errorf("lock store %q: %w", path, err)
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		_ = fl.Unlock()
		return nil, fmt.Errorf("lock store %q: record holder: %w", path, err)
	}
	return func() error {
		// Clear the pid while still holding the lock, so a stale pid
		// never names the next holder.
		terr := os.Truncate(path, 0)
		if err := fl.Unlock(); err != nil {
			return fmt.Errorf("unlock store %q: %w", path, err)
		}
		if terr != nil {
			return fmt.Errorf("unlock store %q: %w", path, terr)
		}
		return nil
	}, nil
}

// HeldError is the store lock held by another process, with LockOptions.NoWait.
type HeldError struct{ PID int }

func (e *HeldError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("held by process %d (another bitpoll-install); wait for it, or run again without --no-wait to wait", e.PID)
	}
	return "held by another bitpoll-install; wait for it, or run again without --no-wait to wait"
}

// lockHolder returns the pid recorded in the lock file, or 0.
func lockHolder(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

// Path returns where the store path of key, name and version lives:
// <store>/<key>-<name>-<version>. It does not check its arguments; Build
// does.
func (s *Store) Path(key, name, version string) string {
	return filepath.Join(s.layout.StoreDir(), key+"-"+name+"-"+version)
}

// checkPart validates a name or version that becomes part of a file name.
func checkPart(what, v string) error {
	if v == "" {
		return fmt.Errorf("store %s is empty, want letters, digits and . _ + -", what)
	}
	if v[0] == '.' || strings.Contains(v, partialInfix) {
		return fmt.Errorf("store %s %q must not start with %q or contain %q", what, v, ".", partialInfix)
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._+-", c)) {
			return fmt.Errorf("store %s %q has %q, want only letters, digits and . _ + -", what, v, c)
		}
	}
	return nil
}

// Build returns the store path of key, name and version, calling build to
// fill it only if it is not already there (built reports whether it did).
// The caller must hold Lock: Build removes leftovers of earlier, crashed
// builds of the same path.
//
// build writes into an empty directory named "<final>.partial-<random>".
// Then Build writes MarkerFile, makes the tree read-only, syncs it, renames
// it to the final path and syncs the store directory. If build fails or
// the process dies before the rename, the final path does not exist.
func (s *Store) Build(ctx context.Context, key, name, version string, build func(dir string) error) (path string, built bool, err error) {
	final := s.Path(key, name, version)
	if !validKey(key) {
		return "", false, fmt.Errorf("build store path: key %q is not %d chars of nix base32; make it with store.Key", key, KeyLen)
	}
	if err := checkPart("name", name); err != nil {
		return "", false, fmt.Errorf("build store path: %w", err)
	}
	if err := checkPart("version", version); err != nil {
		return "", false, fmt.Errorf("build store path: %w", err)
	}
	if _, err := os.Lstat(final); err == nil {
		if err := s.Verify(final); err != nil {
			return "", false, fmt.Errorf("build store path %q: it exists but is broken (remove it and rerun): %w", final, err)
		}
		return final, false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("build store path %q: %w", final, err)
	}
	if err := ctx.Err(); err != nil {
		return "", false, fmt.Errorf("build store path %q: %w", final, err)
	}
	if err := s.build(final, key, build); err != nil {
		return "", false, fmt.Errorf("build store path %q: %w", final, err)
	}
	return final, true, nil
}

func (s *Store) build(final, key string, build func(dir string) error) (err error) {
	stale, err := filepath.Glob(final + partialInfix + "*")
	if err != nil {
		return err
	}
	for _, p := range stale {
		if err := removeTree(p); err != nil {
			return fmt.Errorf("remove leftover of a crashed build: %w", err)
		}
	}
	dir, err := os.MkdirTemp(filepath.Dir(final), filepath.Base(final)+partialInfix+"*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = removeTree(dir)
		}
	}()
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	if err := build(dir); err != nil {
		return err
	}
	s.Hooks.Call(PhaseBuilt, dir)
	marker := filepath.Join(dir, MarkerFile)
	f, err := os.OpenFile(marker, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("write marker (the build must not create %q): %w", MarkerFile, err)
	}
	_, err = f.WriteString(key + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write marker: %w", err)
	}
	if err := seal(dir); err != nil {
		return fmt.Errorf("make read-only: %w", err)
	}
	// The record goes in last, into the sealed tree: the root is made
	// writable for it, and read-only again after.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	if err := writeSeal(dir); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		return err
	}
	if err := syncTree(dir); err != nil {
		return err
	}
	s.Hooks.Call(PhaseSealed, dir)
	if err := renameDurable(dir, final); err != nil {
		return err
	}
	s.Hooks.Call(PhaseStored, final)
	return nil
}

// Verify checks, cheaply, that path is a complete store path of this
// store: its marker holds the key in its name and nothing in it is
// writable. It does not hash the content.
func (s *Store) Verify(path string) error {
	if err := s.verify(path); err != nil {
		return fmt.Errorf("verify store path %q: %w", path, err)
	}
	return nil
}

func (s *Store) verify(path string) error {
	path = filepath.Clean(path)
	if filepath.Dir(path) != filepath.Clean(s.layout.StoreDir()) {
		return fmt.Errorf("not directly inside store %q", s.layout.StoreDir())
	}
	base := filepath.Base(path)
	if strings.Contains(base, partialInfix) {
		return errors.New("it is an unfinished build, not a store path")
	}
	if len(base) <= KeyLen || base[KeyLen] != '-' || !validKey(base[:KeyLen]) {
		return fmt.Errorf("name %q does not start with a key and '-'", base)
	}
	info, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return fmt.Errorf("it is a %v, want a directory", info.Mode().Type())
	}
	b, err := os.ReadFile(filepath.Join(path, MarkerFile))
	if err != nil {
		return fmt.Errorf("incomplete: %w", err)
	}
	if got, want := string(b), base[:KeyLen]+"\n"; got != want {
		return fmt.Errorf("marker holds %q, want %q", got, want)
	}
	return checkSealed(path)
}
