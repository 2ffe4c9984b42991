// Package service puts a built store path into service under systemd: the
// settings file, the secrets, the units, a snapshot of the SQLite
// database, the generation switch and, on a real system, daemon-reload,
// enable and restart through systemd's D-Bus API. Everything that can be
// checked is checked before anything changes.
package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bitpoll-install/bitpoll-install/atomicfile"
	"github.com/bitpoll-install/bitpoll-install/config"
	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/shim"
	"github.com/bitpoll-install/bitpoll-install/store"
	"github.com/bitpoll-install/bitpoll-install/unitgen"
)

// UnitDir is where the units are written, under the layout's root.
const UnitDir = "/etc/systemd/system"

// Options say what to put into service.
type Options struct {
	Layout store.Layout
	Config *config.Config
	// SecretKeyFile is the admin's own SECRET_KEY, used when none exists.
	SecretKeyFile string
	// Systemd controls the running systemd (root, no --root); otherwise
	// only files are written.
	Systemd bool
	Hooks   store.Hooks
	Log     func(string)
}

// Plan is what Apply will write, checked before anything changes.
type Plan struct {
	o        Options
	res      *install.Result
	paths    unitgen.Paths
	units    []unitgen.Unit
	settings []byte
}

// Prepare renders and checks everything for res: the config, the units
// and the secrets the config asks for. Nothing is written.
func Prepare(res *install.Result, o Options) (*Plan, error) {
	if o.Log == nil {
		o.Log = func(string) {}
	}
	p := &Plan{o: o, res: res, paths: unitgen.DefaultPaths()}
	s, err := o.Config.Settings(p.paths)
	if err != nil {
		return nil, err
	}
	if p.settings, err = s.Marshal(); err != nil {
		return nil, fmt.Errorf("settings from the config: %w", err)
	}
	spec, err := o.Config.Spec(p.paths)
	if err != nil {
		return nil, err
	}
	spec.Project = res.Project
	dirs, err := interpreterDirs(res)
	if err != nil && o.Systemd {
		return nil, err
	}
	if err != nil {
		o.Log("warning: " + err.Error())
	}
	spec.InterpreterDirs = dirs
	if p.units, err = unitgen.Render(spec); err != nil {
		return nil, err
	}
	secrets := o.Layout.SecretsDir()
	for _, name := range spec.Credentials {
		if name == shim.SecretKeyFile || name == shim.FieldEncryptionKeyFile {
			continue // generated when missing
		}
		if _, err := os.Stat(filepath.Join(secrets, name)); err != nil {
			return nil, fmt.Errorf("the config names the credential %s, but %s is missing: write the password there (root-only, 0600) or drop password = true",
				name, filepath.Join(secrets, name))
		}
	}
	if o.SecretKeyFile != "" {
		if _, err := readSecretKey(o.SecretKeyFile); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// interpreterDirs are the directories outside /usr that the venv's
// interpreter needs inside the service's file system view. Homes are
// refused: ProtectHome= hides them from the service.
func interpreterDirs(res *install.Result) ([]string, error) {
	base := res.Interp.BasePrefix
	if base == "" || base == "/usr" || strings.HasPrefix(base, "/usr/") {
		return nil, nil
	}
	for _, home := range []string{"/root", "/home", "/run/user"} {
		if base == home || strings.HasPrefix(base, home+"/") {
			return nil, fmt.Errorf("%s lives under %s, which the hardened service cannot see (ProtectHome=): install with the system's python3 or one under /opt or /usr/local (--python PATH)",
				res.Interp.RealPath, home)
		}
	}
	return []string{base}, nil
}

// Result is what Apply did.
type Result struct {
	Generation store.Generation
	Switched   bool
	Units      []string // unit files that changed
	Snapshot   string   // the SQLite snapshot taken before the switch, if any
	Started    bool     // systemd restarted the service
	Ready      time.Duration
}

// Apply writes the plan and switches to its store path; with Systemd it
// reloads systemd, enables the units and restarts the service. If the new
// generation fails to start, current goes back to the previous one.
func (p *Plan) Apply(ctx context.Context) (*Result, error) {
	o := p.o
	r := &Result{}
	if err := p.writeSecrets(); err != nil {
		return nil, err
	}
	etc := filepath.Join(o.Layout.Root, p.paths.Settings)
	if _, err := writeFileAtomic(etc, p.settings, 0o644); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(o.Layout.Root, p.paths.Root), 0o755); err != nil {
		return nil, fmt.Errorf("create the service's root directory: %w", err)
	}
	for _, u := range p.units {
		data, err := u.Bytes()
		if err != nil {
			return nil, err
		}
		changed, err := writeFileAtomic(filepath.Join(o.Layout.Root, UnitDir, u.Name), data, 0o644)
		if err != nil {
			return nil, err
		}
		if changed {
			r.Units = append(r.Units, u.Name)
		}
	}

	st, err := store.Open(o.Layout)
	if err != nil {
		return nil, err
	}
	prev, hadPrev, err := st.CurrentGeneration()
	if err != nil {
		return nil, err
	}
	if !hadPrev || filepath.Base(prev.Target) != filepath.Base(p.res.Path) {
		if r.Snapshot, err = snapshot(ctx, o.Layout, p.res, prev.N); err != nil {
			return nil, err
		}
	}
	r.Generation, r.Switched, err = install.Activate(ctx, o.Layout, p.res.Path, o.Hooks)
	if err != nil {
		return nil, err
	}
	if !o.Systemd {
		return r, nil
	}
	start := time.Now()
	err = restart(ctx, r.Switched || len(r.Units) > 0)
	if err != nil && r.Switched && hadPrev {
		o.Log(fmt.Sprintf("generation %d failed to start; switching back to generation %d", r.Generation.N, prev.N))
		if serr := switchTo(ctx, o.Layout, prev.N); serr != nil {
			return r, errors.Join(err, serr)
		}
		return r, errors.Join(err, restart(ctx, true))
	}
	if err != nil {
		return r, err
	}
	r.Started = true
	r.Ready = time.Since(start)
	return r, nil
}

func switchTo(ctx context.Context, l store.Layout, n int) error {
	st, err := store.Open(l)
	if err != nil {
		return err
	}
	unlock, err := st.Lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return st.Switch(n)
}

// writeFileAtomic replaces path with data (see atomicfile.Write) unless
// it already holds it, and reports whether it changed anything.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	err := os.MkdirAll(filepath.Dir(path), 0o755)
	if err == nil {
		err = atomicfile.Write(path, data, mode)
	}
	if err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	return true, nil
}
