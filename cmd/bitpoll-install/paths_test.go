package main

import (
	"path/filepath"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/layout"
)

// TestCacheDirIsTheLayouts: the cache the index client gets is the cache
// of the layout a build uses, under --root and in the user's layout, so
// lock and run share their downloads; nothing in cmd defines a path.
func TestCacheDirIsTheLayouts(t *testing.T) {
	root := t.TempDir()
	g := &globalOptions{Root: root}
	l, err := g.userLayout()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := g.cacheDir(), l.CacheDir(); got != want || want != filepath.Join(root, layout.Cache) {
		t.Errorf("--root %s: cacheDir() = %q, the layout's CacheDir() = %q, want both %q", root, got, want, filepath.Join(root, layout.Cache))
	}
	if got := (&globalOptions{}).cacheDirAs(0); got != layout.Cache {
		t.Errorf("as root: cacheDir() = %q, want %q", got, layout.Cache)
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("XDG_CACHE_HOME", "")
	g = &globalOptions{}
	l, err = g.userLayout()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := g.cacheDirAs(1000), filepath.Join(home, ".cache", "bitpoll-install"); got != want || l.CacheDir() != want {
		t.Errorf("as a user: cacheDir() = %q, the user layout's CacheDir() = %q, want both %q", got, l.CacheDir(), want)
	}
}
