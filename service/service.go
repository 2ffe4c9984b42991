// Package service puts generations of the store into service under
// systemd: the settings file, the secrets, the units, and the switch from
// one generation to another with its migrations, its snapshot and its
// health gate. Everything that can be checked is checked before anything
// changes; the caller holds the store lock for the whole transaction.
package service

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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
	// GunicornConf: gunicorn's config changed (a new installer's).
	GunicornConf bool
	Snapshot     string   // the database snapshot taken before migrating, if any
	Reversed     []string // migrations reversed with the newer code
	Applied      []string // migrations applied
	Restored     string   // with --restore-snapshot: where the replaced database was kept
	Started      bool     // systemd runs the generation
	Ready        time.Duration
	// Phases are the switch's steps with their times, in order.
	Phases []Phase
}

// Phase is one timed step of a switch.
type Phase struct {
	Name     string
	Duration time.Duration
}

// writeFiles writes the secrets, the settings and the units for
// generation n, and reports what changed since the current generation
// was switched to: what this call changed, and what a killed run changed
// before it could record its switch (see unswitched).
func (p *Plan) writeFiles(n int, r *Result) error {
	o := p.o
	if err := p.writeSecrets(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(o.Layout.Root, p.spec.Paths.Root), 0o755); err != nil {
		return fmt.Errorf("create the service's root directory: %w", err)
	}
	spec := p.spec
	spec.Generation = n
	units, err := unitgen.Render(spec)
	if err != nil {
		return err
	}
	type file struct {
		name, path string
		data       []byte
	}
	// gunicorn's config goes with the units: every generation's instance
	// reads it when it starts.
	files := []file{{settingsName, filepath.Join(o.Layout.Root, p.spec.Paths.Settings), p.data},
		{gunicornConfName, filepath.Join(o.Layout.Root, p.spec.Paths.GunicornConf), shim.GunicornConf}}
	for _, u := range units {
		data, err := u.Bytes()
		if err != nil {
			return err
		}
		files = append(files, file{u.Name, filepath.Join(o.Layout.Root, UnitDir, u.Name), data})
	}
	changed, err := p.readUnswitched()
	if err != nil {
		return err
	}
	var now []string
	for _, f := range files {
		if old, err := os.ReadFile(f.path); err != nil || !bytes.Equal(old, f.data) {
			now = append(now, f.name)
		}
	}
	if len(now) > 0 {
		// Recorded before the first file changes, kept until the switch
		// is recorded (clearUnswitched).
		for _, name := range now {
			if !slices.Contains(changed, name) {
				changed = append(changed, name)
			}
		}
		data, _ := json.Marshal(changed)
		if err := atomicfile.Write(p.unswitchedPath(), append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p.unswitchedPath(), err)
		}
	}
	for _, f := range files {
		if !slices.Contains(now, f.name) {
			continue // read above, and the same
		}
		if _, err := writeFileAtomic(f.path, f.data, 0o644, o.Hooks); err != nil {
			return err
		}
	}
	for _, name := range changed {
		switch {
		case name == settingsName:
			r.Settings = true
		case name == gunicornConfName:
			r.GunicornConf = true
		case !slices.Contains(r.Units, name):
			r.Units = append(r.Units, name)
		}
	}
	return nil
}

// settingsName and gunicornConfName stand for the settings file and
// gunicorn's config among the changed files.
const (
	settingsName     = "settings.json"
	gunicornConfName = "gunicorn.conf.py"
)

// unswitchedPath lists the settings and unit files changed for a switch
// that is not recorded yet. Without it, a kill after the files were
// written and before the switch was recorded would leave a rerun that
// finds the files as it would write them, and nothing to roll out.
func (p *Plan) unswitchedPath() string {
	return filepath.Join(p.o.Layout.EtcDir(), ".unswitched.json")
}

func (p *Plan) readUnswitched() ([]string, error) {
	data, err := os.ReadFile(p.unswitchedPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var names []string
	if err == nil {
		err = json.Unmarshal(data, &names)
	}
	if err != nil {
		// Written atomically by us: a bad one means every file may have
		// changed, which a new generation covers.
		return []string{settingsName}, nil
	}
	return names, nil
}

// clearUnswitched forgets the changed files once the switch that rolls
// them out is recorded: a rerun after a kill from there on finishes it.
func (p *Plan) clearUnswitched() error {
	if err := os.Remove(p.unswitchedPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("forget the changed files: %w", err)
	}
	return nil
}

// The steps of writing the settings file, a unit or a secret, for
// Options.Hooks (with the file's path): tests kill the process at each.
const (
	PhaseFileTemp    store.Phase = "file-temp-created"
	PhaseFileWritten store.Phase = "file-temp-written"
	PhaseFileRenamed store.Phase = "file-renamed"
)

var fileSteps = map[atomicfile.Step]store.Phase{
	atomicfile.TempCreated: PhaseFileTemp,
	atomicfile.TempWritten: PhaseFileWritten,
	atomicfile.Renamed:     PhaseFileRenamed,
}

// writeFileAtomic replaces path with data (see atomicfile.Write) unless
// it already holds it, and reports whether it changed anything.
func writeFileAtomic(path string, data []byte, mode fs.FileMode, h store.Hooks) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	err := os.MkdirAll(filepath.Dir(path), 0o755)
	if err == nil {
		err = atomicfile.WriteSteps(path, data, mode, func(s atomicfile.Step) { h.Call(fileSteps[s], path) })
	}
	if err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	return true, nil
}
