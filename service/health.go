package service

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/coreos/go-systemd/v22/dbus"

	"github.com/bitpoll-install/bitpoll-install/migration"
	"github.com/bitpoll-install/bitpoll-install/shim"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// rootedSettings is s with its paths moved under root, for code run
// directly with --root.
func rootedSettings(s shim.Settings, root string) shim.Settings {
	if s.Database.Engine == "sqlite" && s.Database.Path != "" {
		s.Database.Path = filepath.Join(root, s.Database.Path)
	}
	s.MediaRoot = filepath.Join(root, s.MediaRoot)
	s.StaticRoot = filepath.Join(root, s.StaticRoot)
	return s
}

// DatabaseState asks generation n's own code about the database as the
// installed service sees it: with systemd in the service's sandbox, as
// its user, with its settings file and credentials; with --root directly,
// with the installed settings file's paths under the root. Nothing is
// migrated.
func DatabaseState(ctx context.Context, l store.Layout, systemd bool, n int) (*migration.State, error) {
	var run runner
	if systemd {
		props, err := sandboxProperties(l)
		if err != nil {
			return nil, err
		}
		run = &systemdRunner{l: l, props: props}
	} else {
		data, err := os.ReadFile(l.SettingsFile())
		if err != nil {
			return nil, fmt.Errorf("read the installed settings: %w (run bitpoll-install install)", err)
		}
		s, err := shim.Parse(data)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", l.SettingsFile(), err)
		}
		run = &directRunner{l: l, settings: rootedSettings(*s, l.Root)}
	}
	return readState(ctx, run, n)
}

// UnitState is what systemd says of one unit.
type UnitState struct {
	Name   string
	Load   string // LoadState: "loaded", "not-found", ...
	Active string // ActiveState: "active", "inactive", "failed", ...
	Sub    string // SubState: "running", "listening", "dead", ...
	// File is UnitFileState: "enabled", "disabled", "static", ... or
	// "" when the unit has no file.
	File string
	// Listen is, for a socket unit, what it listens on as systemd says:
	// "127.0.0.1:8000", "[::]:8000" or a unix socket's path.
	Listen []string
}

// UnitStates asks the running systemd about units, over the system bus
// or, as root, systemd's private socket.
func UnitStates(ctx context.Context, names ...string) (map[string]UnitState, error) {
	conn, err := dbus.NewWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to systemd: %w (is this a systemd system? run as root for its private socket)", err)
	}
	defer conn.Close()
	list, err := conn.ListUnitsByNamesContext(ctx, names)
	if err != nil {
		return nil, fmt.Errorf("ask systemd about %v: %w", names, err)
	}
	out := map[string]UnitState{}
	for _, u := range list {
		st := UnitState{Name: u.Name, Load: u.LoadState, Active: u.ActiveState, Sub: u.SubState}
		if p, err := conn.GetUnitPropertyContext(ctx, u.Name, "UnitFileState"); err == nil {
			if v, ok := p.Value.Value().(string); ok {
				st.File = v
			}
		}
		if p, err := conn.GetUnitTypePropertyContext(ctx, u.Name, "Socket", "Listen"); err == nil && strings.HasSuffix(u.Name, ".socket") {
			// a(ss): (type, address) pairs.
			if pairs, ok := p.Value.Value().([][]any); ok {
				for _, pair := range pairs {
					if len(pair) == 2 {
						if a, ok := pair[1].(string); ok {
							st.Listen = append(st.Listen, a)
						}
					}
				}
			}
		}
		out[u.Name] = st
	}
	return out, nil
}

// StatePath is the state directory as root sees it (see statePath): the
// real directory behind /var/lib/bitpoll.
func StatePath(l store.Layout) string { return statePath(l) }
