package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Layout places the directories of DESIGN.md's FHS layout under Root. An
// empty Root means the real system paths; --root DIR sets Root to DIR, so
// tests and trials run without privileges.
type Layout struct {
	Root string
}

func (l Layout) path(p string) string { return filepath.Join(l.Root, p) }

// StoreDir holds the immutable, input-addressed build results.
func (l Layout) StoreDir() string { return l.path("/opt/bitpoll/store") }

// GenerationsDir holds one symlink per generation, named by its number.
func (l Layout) GenerationsDir() string { return l.path("/opt/bitpoll/generations") }

// Current is the symlink to the generation in use.
func (l Layout) Current() string { return l.path("/opt/bitpoll/current") }

// CacheDir holds downloads, addressed by their content.
func (l Layout) CacheDir() string { return l.path("/var/cache/bitpoll-install") }

// EtcDir holds the admin's configuration.
func (l Layout) EtcDir() string { return l.path("/etc/bitpoll") }

// SecretsDir holds generated secrets; its mode is the caller's business.
func (l Layout) SecretsDir() string { return l.path("/etc/bitpoll/secrets") }

// StateDir holds the only mutable data: database, media, snapshots.
func (l Layout) StateDir() string { return l.path("/var/lib/bitpoll") }

// UserLayout is the layout for running without root: the same sub-paths
// under $XDG_DATA_HOME/bitpoll-install, which defaults to
// ~/.local/share/bitpoll-install. Keeping the sub-paths means every other
// package handles both cases through one Layout.
func UserLayout() (Layout, error) {
	// The XDG spec says relative values are invalid and must be ignored.
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return Layout{Root: filepath.Join(d, "bitpoll-install")}, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return Layout{}, fmt.Errorf("find user data directory: %w (set $XDG_DATA_HOME or $HOME)", err)
	}
	if home == "" || !filepath.IsAbs(home) {
		return Layout{}, errors.New("find user data directory: home directory is not an absolute path (set $XDG_DATA_HOME or $HOME)")
	}
	return Layout{Root: filepath.Join(home, ".local", "share", "bitpoll-install")}, nil
}
