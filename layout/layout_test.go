package layout

import (
	"path/filepath"
	"testing"
)

func TestLayout(t *testing.T) {
	for _, root := range []string{"", "/srv/trial", "rel"} {
		l := Layout{Root: root}
		for _, tt := range []struct {
			name string
			got  string
			want string
		}{
			{"StoreDir", l.StoreDir(), "/opt/bitpoll/store"},
			{"GenerationsDir", l.GenerationsDir(), "/opt/bitpoll/generations"},
			{"Current", l.Current(), "/opt/bitpoll/current"},
			{"CacheDir", l.CacheDir(), "/var/cache/bitpoll-install"},
			{"EtcDir", l.EtcDir(), "/etc/bitpoll"},
			{"SecretsDir", l.SecretsDir(), "/etc/bitpoll/secrets"},
			{"StateDir", l.StateDir(), "/var/lib/bitpoll"},
			{"OptDir", l.OptDir(), "/opt/bitpoll"},
			{"ConfigFile", l.ConfigFile(), "/etc/bitpoll/bitpoll.toml"},
			{"SettingsFile", l.SettingsFile(), "/etc/bitpoll/settings.json"},
		} {
			if want := filepath.Join(root, tt.want); tt.got != want {
				t.Errorf("Layout{%q}.%s() = %q, want %q", root, tt.name, tt.got, want)
			}
		}
	}
}

func TestUser(t *testing.T) {
	for _, tt := range []struct {
		xdg, cache, home, want, wantCache string
	}{
		{"/data", "/c", "/home/u", "/data/bitpoll-install", "/c/bitpoll-install"},
		{"", "", "/home/u", "/home/u/.local/share/bitpoll-install", "/home/u/.cache/bitpoll-install"},
		{"relative", "relative", "/home/u", "/home/u/.local/share/bitpoll-install", "/home/u/.cache/bitpoll-install"}, // XDG says: ignore
	} {
		t.Setenv("XDG_DATA_HOME", tt.xdg)
		t.Setenv("XDG_CACHE_HOME", tt.cache)
		t.Setenv("HOME", tt.home)
		l, err := User()
		if err != nil || l.Root != tt.want || l.CacheDir() != tt.wantCache {
			t.Errorf("User() with XDG_DATA_HOME=%q XDG_CACHE_HOME=%q HOME=%q = root %q, cache %q, %v; want %q and %q", tt.xdg, tt.cache, tt.home, l.Root, l.CacheDir(), err, tt.want, tt.wantCache)
		}
	}
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "")
	if l, err := User(); err == nil {
		t.Errorf("User() with no HOME = %q, nil, want an error", l.Root)
	}
}
