package store

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
		} {
			if want := filepath.Join(root, tt.want); tt.got != want {
				t.Errorf("Layout{%q}.%s() = %q, want %q", root, tt.name, tt.got, want)
			}
		}
	}
}

func TestUserLayout(t *testing.T) {
	for _, tt := range []struct {
		xdg, home, want string
	}{
		{"/data", "/home/u", "/data/bitpoll-install"},
		{"", "/home/u", "/home/u/.local/share/bitpoll-install"},
		{"relative", "/home/u", "/home/u/.local/share/bitpoll-install"}, // XDG says: ignore
	} {
		t.Setenv("XDG_DATA_HOME", tt.xdg)
		t.Setenv("HOME", tt.home)
		l, err := UserLayout()
		if err != nil || l.Root != tt.want {
			t.Errorf("UserLayout() with XDG_DATA_HOME=%q HOME=%q = %q, %v, want %q", tt.xdg, tt.home, l.Root, err, tt.want)
		}
	}
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", "")
	if l, err := UserLayout(); err == nil {
		t.Errorf("UserLayout() with no HOME = %q, nil, want an error", l.Root)
	}
}
