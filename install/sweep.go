package install

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bitpoll-install/bitpoll-install/store"
)

// buildTempPrefix names the scratch directories of prepareApp in the
// cache: throwaway settings, secrets and database.
const buildTempPrefix = ".build-"

// outsideLockAge is how old a temporary file beside the settings or the
// units must be before a sweep takes it for a dead process's: they are
// written outside the store lock, and a live writer renames its file
// within milliseconds.
const outsideLockAge = time.Minute

// sweepLeftovers removes what killed runs left in l, and returns how many
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
//     files older than outsideLockAge.
//
// A leftover costs space, never correctness: none of it is ever read.
func sweepLeftovers(l store.Layout) int {
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
			if err != nil || !fi.Mode().IsRegular() || time.Since(fi.ModTime()) < outsideLockAge || !ours(filepath.Base(p)) {
				continue
			}
			if os.Remove(p) == nil {
				n++
			}
		}
	}
	return n
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
