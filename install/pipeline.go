package install

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/bitpoll-install/bitpoll-install/fetch"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/pyenv"
	"github.com/bitpoll-install/bitpoll-install/pyenv/build"
	"github.com/bitpoll-install/bitpoll-install/pyenv/wheel"
)

// unpackedDir is the cache folder, beside the downloads, of unpacked
// wheels: <wheel key>/ holds the wheel's members, flat, as wheel.Unpack
// writes them. The name carries a layout version: v3 is the same layout
// as v2, whose files store paths built by earlier versions hardlinked;
// the sweep removes v2, so that no cache file shares an inode with any
// store path, old or new.
const unpackedDir = "unpacked-v3"

// installed is one distribution placed in the venv.
type installed struct {
	key   string   // unpacked cache name: the wheel's sha256, or built-... for an sdist
	files []string // venv-relative, slash-separated, from wheel.Result
}

// installWheel builds s first if it is an sdist and links it into venv
// from its unpacked copy in the cache, unpacking it there first if need
// be. Its sources go to the compiler as they are placed, unless the
// bytecode cache has them.
func (b *builder) installWheel(ctx context.Context, venv *pyenv.Venv, s lockfile.Selected, byName func(sha, name string) (string, error), pycs *pycCache) (installed, error) {
	whl, err := byName(s.File.SHA256, s.File.Name)
	if err != nil {
		return installed{}, err
	}
	key := s.File.SHA256
	if s.IsSdist {
		var buildWheels []string
		for _, br := range b.buildClosure() {
			if f, ok := br.Pick(b.target); ok {
				p, err := byName(f.File.SHA256, f.File.Name)
				if err != nil {
					return installed{}, err
				}
				buildWheels = append(buildWheels, p)
			}
		}
		built, err := build.BuildWheel(ctx, whl, s.File.SHA256, build.Options{
			Interp: b.interp, BuildWheels: buildWheels, CacheDir: b.o.Layout.CacheDir(), Target: b.target.String(),
			Limits: b.o.Unpack,
		})
		if err != nil {
			return installed{}, fmt.Errorf("build %s %s from source: %w", s.Package.Name, s.Package.Version, err)
		}
		whl = built
		key = "built-" + key + "-" + b.target.String()
	}
	scheme := wheel.Scheme{
		Purelib: venv.Scheme.Purelib, Platlib: venv.Scheme.Platlib, Scripts: venv.Scheme.Scripts,
		Headers: filepath.Join(venv.Scheme.Headers, s.Package.Name), Data: venv.Scheme.Data,
	}
	o := wheel.Options{
		Python: filepath.Join(b.final, VenvDir, "bin", "python"), Installer: "bitpoll-install",
		MaxRatio: b.o.Unpack.Ratio, MaxSize: b.o.Unpack.Ceiling, MaxFiles: b.o.Unpack.Files,
	}
	// Each wheel unpacks once into the cache, while it is first
	// installed; venvs copy from it, each file checked against the
	// wheel's RECORD on the way, and share no inode with it.
	unpacked := filepath.Join(b.o.Layout.CacheDir(), unpackedDir, key)
	if _, err := os.Stat(unpacked); errors.Is(err, fs.ErrNotExist) {
		o.UnpackTo = unpacked
	} else {
		o.Unpacked = unpacked
	}
	entry, err := pycs.open(key)
	if err != nil {
		return installed{}, err
	}
	var deferred *deferredPlaced
	switch {
	case entry != nil && o.Unpacked != "":
		// A damaged tree fails the install, which then removes what it
		// placed: no source may reach the compiler before it succeeds.
		deferred = &deferredPlaced{}
		o.Placed = deferred.add
	case entry != nil:
		o.Placed = pycs.placed(entry, venv.Dir)
	}
	res, err := wheel.Install(whl, scheme, o)
	if err != nil && o.Unpacked != "" && errors.Is(err, wheel.ErrDamaged) {
		b.o.Progress.Log(fmt.Sprintf("the unpacked cache %s of %s is damaged (%s): removed it; unpacking the wheel again", unpacked, s.File.Name, damageReason(err)))
		if err := removeCacheEntry(unpacked); err != nil {
			return installed{}, err
		}
		o.Unpacked, o.UnpackTo = "", unpacked
		if deferred != nil {
			deferred = &deferredPlaced{}
			o.Placed = deferred.add
		}
		res, err = wheel.Install(whl, scheme, o)
	}
	if err != nil {
		return installed{}, err
	}
	if deferred != nil {
		placed := pycs.placed(entry, venv.Dir)
		for _, p := range deferred.paths {
			placed(p)
		}
	}
	return installed{key: key, files: res.Files}, nil
}

// CacheEntryDirs are the folders under cacheDir whose entries are named
// after the wheels' sha256: unpacked wheels, their bytecode and the
// downloads. gc frees the entries no kept store path uses.
func CacheEntryDirs(cacheDir string) []string {
	return []string{filepath.Join(cacheDir, unpackedDir), filepath.Join(cacheDir, pycDir), fetch.WheelsCache(cacheDir)}
}

// damageReason says which member of a damaged unpacked tree failed.
func damageReason(err error) string {
	if me := (*wheel.MemberError)(nil); errors.As(err, &me) {
		return fmt.Sprintf("%s differs from the wheel's RECORD", me.Member)
	}
	return "its RECORD differs from the wheel's"
}

// deferredPlaced holds what wheel.Install placed until it has succeeded.
type deferredPlaced struct {
	mu    sync.Mutex
	paths []string
}

func (d *deferredPlaced) add(p string) {
	d.mu.Lock()
	d.paths = append(d.paths, p)
	d.mu.Unlock()
}

// removeCacheEntry deletes a damaged cache entry: it is renamed aside
// first, so that its name is free at once and a kill midway leaves a
// leftover the next sweep removes, never a half-deleted entry.
func removeCacheEntry(dir string) error {
	aside := filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".partial-damaged")
	if err := os.RemoveAll(aside); err != nil {
		return fmt.Errorf("remove damaged cache entry %s: %w", dir, err)
	}
	if err := os.Rename(dir, aside); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove damaged cache entry %s: %w", dir, err)
	}
	if err := os.RemoveAll(aside); err != nil {
		return fmt.Errorf("remove damaged cache entry %s: %w", dir, err)
	}
	return nil
}
