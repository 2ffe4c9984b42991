package main

import (
	"os"
	"path/filepath"

	"github.com/bitpoll-install/bitpoll-install/store"
)

// cacheDir is the download cache: /var/cache/bitpoll-install for root or
// under --root, else the user's cache directory, so no command needs root.
func (g *globalOptions) cacheDir() string {
	if g.Root != "" {
		return filepath.Join(g.Root, "var/cache/bitpoll-install")
	}
	if os.Geteuid() == 0 {
		return "/var/cache/bitpoll-install"
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "bitpoll-install")
	}
	return filepath.Join(os.TempDir(), "bitpoll-install-cache")
}

// userLayout is the store for the commands that need no root: under --root
// if given, else in the user's data directory.
func (g *globalOptions) userLayout() (store.Layout, error) {
	if g.Root != "" {
		return store.Layout{Root: g.Root}, nil
	}
	return store.UserLayout()
}
