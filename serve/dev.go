package serve

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/service"
	"github.com/bitpoll-install/bitpoll-install/shim"
)

// DevOptions run a live checkout against a locked venv.
type DevOptions struct {
	Checkout string   // the app checkout, used as it is
	StateDir string   // per-checkout database, media, secrets
	Port     int      // for runserver
	Args     []string // manage.py arguments; empty runs runserver with autoreload
	Stdin    io.Reader
	Stdout   io.Writer
	Stderr   io.Writer
}

// DevStateDir is where dev keeps a checkout's state: one folder per
// checkout path, so two checkouts never share a database.
func DevStateDir(base, checkout string) string {
	h := sha256.Sum256([]byte(checkout))
	return filepath.Join(base, "dev", hex.EncodeToString(h[:8]))
}

// Dev puts the shim into the checkout (never over another file), migrates
// and runs manage.py with the venv at venvRes.
func Dev(ctx context.Context, venvRes *install.Result, o DevOptions) error {
	project, err := install.FindProject(o.Checkout)
	if err != nil {
		return err
	}
	local := filepath.Join(o.Checkout, project, "settings_local.py")
	switch have, err := os.ReadFile(local); {
	case os.IsNotExist(err):
		if err := os.WriteFile(local, shim.SettingsLocal, 0o644); err != nil {
			return fmt.Errorf("write the settings shim: %w", err)
		}
	case err != nil:
		return err
	case !bytes.Equal(have, shim.SettingsLocal):
		return fmt.Errorf("%s exists and is not bitpoll-install's shim: move it aside (its settings go in the JSON settings file) and run again", local)
	}
	secrets := filepath.Join(o.StateDir, "secrets")
	if err := service.WriteSecrets(secrets); err != nil {
		return err
	}
	base := "http://127.0.0.1:" + strconv.Itoa(o.Port)
	settings := shim.Settings{
		AllowedHosts: []string{"127.0.0.1", "localhost"},
		BaseURL:      base,
		Debug:        true,
		Database:     shim.Database{Engine: "sqlite", Path: filepath.Join(o.StateDir, "db.sqlite3")},
		StaticRoot:   filepath.Join(o.StateDir, "static"),
		MediaRoot:    filepath.Join(o.StateDir, "media"),
	}
	env, err := install.ManagementEnv(settings, o.StateDir, secrets)
	if err != nil {
		return err
	}
	py := filepath.Join(venvRes.Path, install.VenvDir, "bin", "python")
	manage := func(args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, py, append([]string{"manage.py"}, args...)...)
		cmd.Dir, cmd.Env = o.Checkout, env
		cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdin, o.Stdout, o.Stderr
		return cmd
	}
	if len(o.Args) > 0 {
		return manage(o.Args...).Run()
	}
	if err := manage("migrate", "--noinput").Run(); err != nil {
		return fmt.Errorf("migrate %s: %w", settings.Database.Path, err)
	}
	err = manage("runserver", "127.0.0.1:"+strconv.Itoa(o.Port)).Run()
	if ctx.Err() != nil {
		return nil
	}
	return err
}
