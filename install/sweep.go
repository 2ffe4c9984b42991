package install

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/bitpoll-install/bitpoll-install/atomicfile"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// buildTempPrefix names the scratch directories of prepareApp in the
// cache: throwaway settings, secrets and database.
const buildTempPrefix = ".build-"

// outsideLockAge is how old a temporary file beside the settings or the
// units must be before a sweep takes it for a dead process's when its
// name does not say whose it is (atomicfile's before it named the
// writer's process id): a live writer renames its file within
// milliseconds.
const outsideLockAge = time.Minute

// legacyBuildPrefix names the build scratch directories that installers
// before the cache's .build- made in $TMPDIR, with throwaway secrets in
// them; legacyBuildAge is how old one must be to be a dead run's: no
// build ever took an hour.
const (
	legacyBuildPrefix = "bitpoll-build-"
	legacyBuildAge    = time.Hour
)

// SweepLeftovers removes what killed runs left in l, and returns how many
// entries it removed. The caller holds the store lock, which every build
// holds, so nothing in the cache or the store is being made now:
//   - in the cache: unpacked wheels and bytecode entries built aside, the
//     folder of wheel names, build scratch directories (with their
//     throwaway secrets), and the layouts before pyc-v2 and
//     unpacked-v3, whose files older store paths share; partial
//     downloads go in Fetch (Downloader.Exclusive);
//   - in the store: .partial- directories of any build, not only of the
//     path being built;
//   - beside the settings file and the units: atomic writes' temporary
//     files of processes that are gone (or, for a name without the
//     writer's process id, older than outsideLockAge);
//   - in $TMPDIR: the build scratch directories of older installers
//     (legacyBuildPrefix), once older than legacyBuildAge.
//
// A leftover costs space, never correctness: none of it is ever read.
func SweepLeftovers(l store.Layout) int {
	cache := l.CacheDir()
	n := 0
	for _, pattern := range []string{
		filepath.Join(cache, unpackedDir, ".*.partial-*"),
		filepath.Join(cache, pycDir, ".*.partial-*"),
		filepath.Join(cache, ".named-*"),
		filepath.Join(cache, buildTempPrefix+"*"),
		filepath.Join(cache, "pyc-v1"),      // hardlinked into older store paths
		filepath.Join(cache, "unpacked-v2"), // likewise
		filepath.Join(l.StoreDir(), "*.partial-*"),
	} {
		stale, _ := filepath.Glob(pattern)
		for _, p := range stale {
			if removeForce(p) == nil {
				n++
			}
		}
	}
	for _, dir := range []string{l.EtcDir(), filepath.Join(l.Root, "/etc/systemd/system")} {
		stale, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
		for _, p := range stale {
			fi, err := os.Lstat(p)
			if err != nil || !fi.Mode().IsRegular() || !ours(filepath.Base(p)) {
				continue
			}
			if pid, ok := atomicfile.TempPID(filepath.Base(p)); ok {
				if alive(pid) {
					continue
				}
			} else if time.Since(fi.ModTime()) < outsideLockAge {
				continue
			}
			if os.Remove(p) == nil {
				n++
			}
		}
	}
	legacy, _ := filepath.Glob(filepath.Join(os.TempDir(), legacyBuildPrefix+"*"))
	for _, p := range legacy {
		fi, err := os.Lstat(p)
		if err != nil || !fi.IsDir() || time.Since(fi.ModTime()) < legacyBuildAge {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Getuid() {
			continue // another user's, or not known whose
		}
		if removeForce(p) == nil {
			n++
		}
	}
	return n
}

// alive reports whether process pid exists (as another's, or ours).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// ours reports whether a temporary file's name is one of an atomic write
// of bitpoll-install's: settings.json or a bitpoll unit.
func ours(name string) bool {
	base, _, _ := strings.Cut(strings.TrimPrefix(name, "."), ".tmp-")
	return base == "settings.json" || strings.HasPrefix(base, "bitpoll")
}

// removeForce removes the tree at p, giving its directories their write
// bit back first where a sealed tree lacks it.
func removeForce(p string) error {
	if err := os.RemoveAll(p); err == nil {
		return nil
	}
	_ = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(q, 0o755)
		}
		return nil
	})
	return os.RemoveAll(p)
}
