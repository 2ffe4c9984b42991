package main

import (
	"os"
	"path/filepath"
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
