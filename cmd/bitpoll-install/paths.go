package main

import (
	"os"
	"path/filepath"

	"github.com/bitpoll-install/bitpoll-install/store"
)

// cacheDir is the download cache of the layout the command builds into:
// the system's (/var/cache/bitpoll-install) for root or under --root, else
// the user layout's, so no command needs root.
func (g *globalOptions) cacheDir() string { return g.cacheDirAs(os.Geteuid()) }

// cacheDirAs is cacheDir for the user id euid.
func (g *globalOptions) cacheDirAs(euid int) string {
	if g.Root != "" || euid == 0 {
		return store.Layout{Root: g.Root}.CacheDir()
	}
	l, err := g.userLayout()
	if err != nil {
		return filepath.Join(os.TempDir(), "bitpoll-install-cache")
	}
	return l.CacheDir()
}

// userLayout is the store for the commands that need no root: under --root
// if given, else in the user's data directory.
func (g *globalOptions) userLayout() (store.Layout, error) {
	if g.Root != "" {
		return store.Layout{Root: g.Root}, nil
	}
	return store.UserLayout()
}
