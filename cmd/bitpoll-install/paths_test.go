package main

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/layout"
	"github.com/bitpoll-install/bitpoll-install/safearchive"
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

// TestUnpackFlags: every command that reads archives has the flags that
// safearchive's refusals name, with its defaults, and refuses a limit that
// is not positive.
func TestUnpackFlags(t *testing.T) {
	root := newRootCommand(&globalOptions{})
	for _, name := range []string{"lock", "install", "upgrade", "run", "dev"} {
		c, _, err := root.Find([]string{name})
		if err != nil || c.Name() != name {
			t.Fatalf("command %s: %v", name, err)
		}
		for flag, def := range map[string]string{
			safearchive.FlagRatio:   strconv.FormatInt(safearchive.DefaultRatio, 10),
			safearchive.FlagCeiling: strconv.FormatInt(safearchive.DefaultCeiling, 10),
			safearchive.FlagFiles:   strconv.Itoa(safearchive.DefaultFiles),
		} {
			if f := c.Flags().Lookup(flag); f == nil || f.DefValue != def {
				t.Errorf("%s --%s: %v, want a flag defaulting to %s", name, flag, f, def)
			}
		}
	}
	o := unpackOptions{Unpack: safearchive.Default()}
	if err := o.check(); err != nil {
		t.Errorf("check(defaults) = %v", err)
	}
	o.Unpack.Ratio = 0
	var ue *usageError
	if err := o.check(); !errors.As(err, &ue) || !strings.Contains(err.Error(), "--"+safearchive.FlagRatio) {
		t.Errorf("check(ratio 0) = %v, want a usage error naming --%s", err, safearchive.FlagRatio)
	}
}
