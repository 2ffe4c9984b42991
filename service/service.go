// Package service puts generations of the store into service under
// systemd: the settings file, the secrets, the units, and the switch from
// one generation to another with its migrations, its snapshot and its
// health gate. Everything that can be checked is checked before anything
// changes; the caller holds the store lock for the whole transaction.
package service

import (
	"bytes"
	"encoding/json"
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

// DefaultGateTimeout is how long the health gate waits for the new
// generation's first answer.
const DefaultGateTimeout = 2 * time.Minute

// Options say what to put into service.
type Options struct {
	Layout store.Layout
	Config *config.Config
	// SecretKeyFile is the admin's own SECRET_KEY, used when none exists.
	SecretKeyFile string
	// Systemd controls the running systemd (root, no --root); otherwise
	// only files are written, and migrations and the gate run directly.
	Systemd bool
	// GateTimeout bounds the wait for the new generation's first answer;
	// zero means DefaultGateTimeout.
	GateTimeout time.Duration
	Hooks       store.Hooks
	Log         func(string)
}

// Plan is what Apply will write, checked before anything changes.
type Plan struct {
	o        Options
	spec     unitgen.Spec
	settings shim.Settings
	data     []byte // settings as JSON
	project  string
}

// Prepare renders and checks everything for a generation of project: the
// config, the units and the secrets the config asks for. Nothing is
// written. interp is the store path's interpreter prefix (BasePrefix), to
// be made visible to the service when it lies outside /usr.
func Prepare(project, interpPrefix, interpPath string, o Options) (*Plan, error) {
	if o.Log == nil {
		o.Log = func(string) {}
	}
	if o.GateTimeout == 0 {
		o.GateTimeout = DefaultGateTimeout
	}
	p := &Plan{o: o, project: project}
	paths := unitgen.DefaultPaths()
	var err error
	if p.settings, err = o.Config.Settings(paths); err != nil {
		return nil, err
	}
	if p.data, err = p.settings.Marshal(); err != nil {
		return nil, fmt.Errorf("settings from the config: %w", err)
	}
	if p.spec, err = o.Config.Spec(paths); err != nil {
		return nil, err
	}
	p.spec.Project = project
	dirs, err := interpreterDirs(interpPrefix, interpPath)
	if err != nil && o.Systemd {
		return nil, err
	}
	if err != nil {
		o.Log("warning: " + err.Error())
	}
	p.spec.InterpreterDirs = dirs
	if _, err := unitgen.Render(p.spec); err != nil {
		return nil, err
	}
	secrets := o.Layout.SecretsDir()
	for _, name := range p.spec.Credentials {
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

// PrepareFor is Prepare for an installed store path: its project and
// interpreter come from its manifest.
func PrepareFor(storePath string, o Options) (*Plan, error) {
	m, err := ReadManifest(storePath)
	if err != nil {
		return nil, err
	}
	return Prepare(m.Project, m.BasePrefix, m.PythonPath(), o)
}

// Manifest is what a store path says of itself (install.Manifest).
type Manifest struct {
	App struct {
		Name, Version string
	}
	Python     string
	BasePrefix string
	Project    string
	// Pkgs are the wheels the store path was built from; their sha256
	// name its cache entries.
	Pkgs []struct{ SHA256 string }
}

// PythonPath is the interpreter's path: the last word of Python's ID.
func (m Manifest) PythonPath() string {
	f := strings.Fields(m.Python)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

// ReadManifest reads a store path's manifest.
func ReadManifest(storePath string) (Manifest, error) {
	var m Manifest
	data, err := os.ReadFile(filepath.Join(storePath, install.Manifest))
	if err == nil {
		err = json.Unmarshal(data, &m)
	}
	if err != nil {
		return Manifest{}, fmt.Errorf("read the manifest of %s: %w", storePath, err)
	}
	return m, nil
}

// interpreterDirs are the directories outside /usr that the venv's
// interpreter needs inside the service's file system view. Homes are
// refused: ProtectHome= hides them from the service.
func interpreterDirs(base, real string) ([]string, error) {
	if base == "" || base == "/usr" || strings.HasPrefix(base, "/usr/") {
		return nil, nil
	}
	for _, home := range []string{"/root", "/home", "/run/user"} {
		if base == home || strings.HasPrefix(base, home+"/") {
			return nil, fmt.Errorf("%s lives under %s, which the hardened service cannot see (ProtectHome=): install with the system's python3 or one under /opt or /usr/local (--python PATH)",
				real, home)
		}
	}
	return []string{base}, nil
}

// Result is what a switch did.
type Result struct {
	Generation store.Generation
	Previous   int      // the generation that served before, or 0
	Switched   bool     // current moved
	Units      []string // unit files that changed
	Settings   bool     // the settings file changed
	Snapshot   string   // the database snapshot taken before migrating, if any
	Reversed   []string // migrations reversed with the newer code
	Applied    []string // migrations applied
	Restored   string   // with --restore-snapshot: where the replaced database was kept
	Started    bool     // systemd runs the generation
	Ready      time.Duration
	// Phases are the switch's steps with their times, in order.
	Phases []Phase
}

// Phase is one timed step of a switch.
type Phase struct {
	Name     string
	Duration time.Duration
}

// writeFiles writes the secrets, the settings and the units for
// generation n, and reports what changed.
func (p *Plan) writeFiles(n int, r *Result) error {
	o := p.o
	if err := p.writeSecrets(); err != nil {
		return err
	}
	var err error
	if r.Settings, err = writeFileAtomic(filepath.Join(o.Layout.Root, p.spec.Paths.Settings), p.data, 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(o.Layout.Root, p.spec.Paths.Root), 0o755); err != nil {
		return fmt.Errorf("create the service's root directory: %w", err)
	}
	// gunicorn's config goes with the units: every generation's instance
	// reads it when it starts.
	conf := p.spec.Paths.GunicornConf
	if changed, err := writeFileAtomic(filepath.Join(o.Layout.Root, conf), shim.GunicornConf, 0o644); err != nil {
		return err
	} else if changed {
		r.Units = append(r.Units, filepath.Base(conf))
	}
	spec := p.spec
	spec.Generation = n
	units, err := unitgen.Render(spec)
	if err != nil {
		return err
	}
	for _, u := range units {
		data, err := u.Bytes()
		if err != nil {
			return err
		}
		changed, err := writeFileAtomic(filepath.Join(o.Layout.Root, UnitDir, u.Name), data, 0o644)
		if err != nil {
			return err
		}
		if changed {
			r.Units = append(r.Units, u.Name)
		}
	}
	return nil
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
