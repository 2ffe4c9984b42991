package install

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/bitpoll-install/bitpoll-install/shim"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// WriteSecrets generates the secrets missing from dir (0700), each 0600.
// Existing ones are never overwritten: the field encryption key decrypts
// data already stored.
func WriteSecrets(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create secrets directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("create secrets directory: %w", err)
	}
	gen := map[string]func() (string, error){
		shim.SecretKeyFile:          djangoSecretKey,
		shim.FieldEncryptionKeyFile: fernetKey,
	}
	for _, name := range []string{shim.SecretKeyFile, shim.FieldEncryptionKeyFile} {
		path := filepath.Join(dir, name)
		if _, err := os.Stat(path); err == nil {
			continue
		}
		v, err := gen[name]()
		if err != nil {
			return err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue // another process made it first; keep theirs
		}
		if err != nil {
			return fmt.Errorf("write secret %s: %w", path, err)
		}
		_, werr := f.WriteString(v)
		serr := f.Sync()
		cerr := f.Close()
		if err := errors.Join(werr, serr, cerr); err != nil {
			os.Remove(path)
			return fmt.Errorf("write secret %s: %w", path, err)
		}
	}
	return nil
}

// The format of a generated SECRET_KEY, Django's own for new projects:
// SecretKeyLen characters of SecretKeyAlphabet. The NixOS module
// generates the same (nix/module.nix, bitpoll-secrets.service).
const (
	SecretKeyAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789!@#%^&*(-_=+)"
	SecretKeyLen      = 50
)

// djangoSecretKey is SecretKeyLen characters from SecretKeyAlphabet.
func djangoSecretKey() (string, error) {
	out := make([]byte, SecretKeyLen)
	for i := range out {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(SecretKeyAlphabet))))
		if err != nil {
			return "", err
		}
		out[i] = SecretKeyAlphabet[n.Int64()]
	}
	return string(out), nil
}

// fernetKey is what django-encrypted-model-fields expects: 32 random bytes,
// URL-safe base64.
func fernetKey() (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		return "", err
	}
	return base64.URLEncoding.EncodeToString(b), nil
}

// managementEnv writes settings as JSON into dir and returns the environment
// that points the shim at it and at the secrets.
func managementEnv(settings shim.Settings, dir, secrets string) ([]string, error) {
	data, err := settings.Marshal() // validates
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "settings.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return nil, fmt.Errorf("write settings: %w", err)
	}
	return append(cleanEnv(), shim.SettingsFileEnv+"="+path, shim.SecretsDirEnv+"="+secrets, "PYTHONDONTWRITEBYTECODE=1"), nil
}

// ServeOptions run a store path in the foreground.
type ServeOptions struct {
	Port     int
	Address  string // default 127.0.0.1
	StateDir string // database, media, settings
	Secrets  string
	Workers  int
	Stdout   io.Writer
	Stderr   io.Writer
	// Ready, if set, is called once the server answers.
	Ready func(url string)
}

// Serve migrates the SQLite database in StateDir and runs gunicorn on the
// store path until ctx ends.
func Serve(ctx context.Context, res *Result, o ServeOptions) error {
	if o.Address == "" {
		o.Address = "127.0.0.1"
	}
	if o.Workers == 0 {
		o.Workers = 2
	}
	if err := os.MkdirAll(filepath.Join(o.StateDir, "media"), 0o755); err != nil {
		return err
	}
	if err := WriteSecrets(o.Secrets); err != nil {
		return err
	}
	base := fmt.Sprintf("http://%s:%d", o.Address, o.Port)
	settings := shim.Settings{
		AllowedHosts: []string{o.Address, "localhost"},
		BaseURL:      base,
		Database:     shim.Database{Engine: "sqlite", Path: filepath.Join(o.StateDir, "db.sqlite3")},
		StaticRoot:   filepath.Join(res.Path, StaticDir),
		MediaRoot:    filepath.Join(o.StateDir, "media"),
	}
	env, err := managementEnv(settings, o.StateDir, o.Secrets)
	if err != nil {
		return err
	}
	app := filepath.Join(res.Path, AppDir)
	py := filepath.Join(res.Path, VenvDir, "bin", "python")
	migrate := exec.CommandContext(ctx, py, "manage.py", "migrate", "--noinput")
	migrate.Dir, migrate.Env, migrate.Stdout, migrate.Stderr = app, env, o.Stderr, o.Stderr
	if err := migrate.Run(); err != nil {
		return fmt.Errorf("migrate the database in %s: %w", o.StateDir, err)
	}
	gunicorn := exec.Command(filepath.Join(res.Path, VenvDir, "bin", "gunicorn"),
		"--bind", o.Address+":"+strconv.Itoa(o.Port), "--workers", strconv.Itoa(o.Workers),
		"--access-logfile", "-", res.Project+".wsgi")
	gunicorn.Dir, gunicorn.Env, gunicorn.Stdout, gunicorn.Stderr = app, env, o.Stdout, o.Stderr
	if err := gunicorn.Start(); err != nil {
		return fmt.Errorf("start gunicorn: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- gunicorn.Wait() }()
	if o.Ready != nil {
		go waitReady(ctx, base+"/", o.Ready)
	}
	select {
	case err := <-done:
		return fmt.Errorf("gunicorn exited: %w", err)
	case <-ctx.Done():
		// A graceful stop: gunicorn finishes requests in flight on SIGTERM.
		gunicorn.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			gunicorn.Process.Kill()
			<-done
		}
		return nil
	}
}

// waitReady polls url until the server answers, then calls ready once.
func waitReady(ctx context.Context, url string, ready func(string)) {
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			ready(url)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Activate records path as a generation unless the current one already is
// it, and makes it current. It reports whether current moved.
func Activate(ctx context.Context, l store.Layout, path string, h store.Hooks) (store.Generation, bool, error) {
	st, err := store.Open(l)
	if err != nil {
		return store.Generation{}, false, err
	}
	st.Hooks = h
	unlock, err := st.Lock(ctx)
	if err != nil {
		return store.Generation{}, false, err
	}
	defer unlock()
	cur, ok, err := st.CurrentGeneration()
	if err != nil {
		return store.Generation{}, false, err
	}
	if ok && filepath.Base(cur.Target) == filepath.Base(path) {
		return cur, false, nil
	}
	gen, err := st.AddAndSwitch(path)
	if err != nil {
		return store.Generation{}, false, err
	}
	return gen, true, nil
}
