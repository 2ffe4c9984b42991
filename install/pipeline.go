package install

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/bitpoll-install/bitpoll-install/fetch"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/pyenv"
	"github.com/bitpoll-install/bitpoll-install/pyenv/build"
	"github.com/bitpoll-install/bitpoll-install/pyenv/wheel"
)

// unpackedDir is the cache folder, beside the downloads, of unpacked
// wheels: <wheel key>/ holds the wheel's members, flat, as wheel.Unpack
// writes them. The name carries a layout version.
const unpackedDir = "unpacked-v2"

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
	o := wheel.Options{Python: filepath.Join(b.final, VenvDir, "bin", "python"), Installer: "bitpoll-install", Link: linkOrCopy}
	// Each wheel unpacks once into the cache, while it is first
	// installed; venvs hardlink from it.
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
	if entry != nil {
		o.Placed = pycs.placed(entry, venv.Dir)
	}
	res, err := wheel.Install(whl, scheme, o)
	if err != nil {
		return installed{}, err
	}
	return installed{key: key, files: res.Files}, nil
}

// CacheEntryDirs are the folders under cacheDir whose entries are named
// after the wheels' sha256: unpacked wheels, their bytecode and the
// downloads. gc frees the entries no kept store path uses.
func CacheEntryDirs(cacheDir string) []string {
	return []string{filepath.Join(cacheDir, unpackedDir), filepath.Join(cacheDir, pycDir), fetch.WheelsCache(cacheDir)}
}
