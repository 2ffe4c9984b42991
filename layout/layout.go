// Package layout is where every file of an installation lives: DESIGN.md's
// FHS layout, defined once. Every path is derived from one root (--root),
// so tests and trials run the whole layout without privileges; the units
// and the store read the same names from here.
package layout

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// The system paths, as a Layout with an empty Root gives them.
const (
	Opt          = "/opt/bitpoll"
	Store        = Opt + "/store"            // immutable, input-addressed build results
	Generations  = Opt + "/generations"      // one symlink per generation, named by its number
	Current      = Opt + "/current"          // the symlink to the generation in use
	ServiceRoot  = Opt + "/root"             // empty and root-owned: the root of the service's view
	GunicornConf = Opt + "/gunicorn.conf.py" // gunicorn's --config for every generation, written with the units
	Etc          = "/etc/bitpoll"            // the admin's configuration
	ConfigFile   = Etc + "/bitpoll.toml"
	Settings     = Etc + "/settings.json" // the JSON settings the shim reads (no secrets)
	Secrets      = Etc + "/secrets"       // generated secrets, root-only
	State        = "/var/lib/bitpoll"     // the only mutable data: database, media, snapshots
	Cache        = "/var/cache/bitpoll-install"
	Backups      = "/var/backups/bitpoll" // where backup writes when not told where (root-only)
)

// The folders inside a store path (and so inside a generation).
const (
	AppDir    = "app"
	VenvDir   = "venv"
	StaticDir = "static"
)

// Layout places the system paths under Root. An empty Root means the real
// system paths.
type Layout struct {
	Root string
	// CacheRoot, when set, holds the download cache instead of
	// Root/var/cache/bitpoll-install: User puts it in the user's cache
	// directory.
	CacheRoot string
}

func (l Layout) path(p string) string { return filepath.Join(l.Root, p) }

// OptDir holds the store, the generations and current.
func (l Layout) OptDir() string { return l.path(Opt) }

// StoreDir holds the immutable, input-addressed build results.
func (l Layout) StoreDir() string { return l.path(Store) }

// GenerationsDir holds one symlink per generation, named by its number.
func (l Layout) GenerationsDir() string { return l.path(Generations) }

// Current is the symlink to the generation in use.
func (l Layout) Current() string { return l.path(Current) }

// CacheDir holds downloads, addressed by their content.
func (l Layout) CacheDir() string {
	if l.CacheRoot != "" {
		return l.CacheRoot
	}
	return l.path(Cache)
}

// EtcDir holds the admin's configuration.
func (l Layout) EtcDir() string { return l.path(Etc) }

// ConfigFile is the admin's config file.
func (l Layout) ConfigFile() string { return l.path(ConfigFile) }

// SettingsFile is the JSON settings file of the service.
func (l Layout) SettingsFile() string { return l.path(Settings) }

// SecretsDir holds generated secrets; its mode is the caller's business.
func (l Layout) SecretsDir() string { return l.path(Secrets) }

// StateDir holds the only mutable data: database, media, snapshots.
func (l Layout) StateDir() string { return l.path(State) }

// BackupsDir is where backups go by default.
func (l Layout) BackupsDir() string { return l.path(Backups) }

// User is the layout for running without root: the same sub-paths under
// $XDG_DATA_HOME/bitpoll-install (by default
// ~/.local/share/bitpoll-install), and the download cache in the user's
// cache directory ($XDG_CACHE_HOME/bitpoll-install, by default
// ~/.cache/bitpoll-install). Keeping the sub-paths means every other
// package handles both cases through one Layout.
func User() (Layout, error) {
	home, homeErr := os.UserHomeDir()
	if homeErr == nil && (home == "" || !filepath.IsAbs(home)) {
		homeErr = errors.New("home directory is not an absolute path")
	}
	// The XDG spec says relative values are invalid and must be ignored.
	dir := func(env string, under ...string) (string, error) {
		if d := os.Getenv(env); d != "" && filepath.IsAbs(d) {
			return filepath.Join(d, "bitpoll-install"), nil
		}
		if homeErr != nil {
			return "", fmt.Errorf("find user directory: %w (set $%s or $HOME)", homeErr, env)
		}
		return filepath.Join(append(append([]string{home}, under...), "bitpoll-install")...), nil
	}
	var l Layout
	var err error
	if l.Root, err = dir("XDG_DATA_HOME", ".local", "share"); err != nil {
		return Layout{}, err
	}
	if l.CacheRoot, err = dir("XDG_CACHE_HOME", ".cache"); err != nil {
		return Layout{}, err
	}
	return l, nil
}
