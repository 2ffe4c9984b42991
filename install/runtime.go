package install

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bitpoll-install/bitpoll-install/atomicfile"
	"github.com/bitpoll-install/bitpoll-install/shim"
)

// WriteSecrets generates the secrets missing from dir (0700), each 0600;
// see SecretWriter.
func WriteSecrets(dir string) error { return SecretWriter{Dir: dir}.Write() }

// SecretWriter generates the secrets missing from Dir (0700), each 0600.
// A secret that exists is never overwritten: the field encryption key
// decrypts data already stored, and a new SECRET_KEY ends every session.
// The one exception is a secret nothing can have used: an empty file, or
// a field encryption key that is not a Fernet key (a cut-short write by
// an older version). Such a file is replaced, and Log is told.
//
// Each secret is written to a temporary file in Dir, synced, and then
// linked to its name, which appears only with its whole content; a kill
// at any point leaves the old state or the new, and at most a temporary
// file, which the next Write removes.
type SecretWriter struct {
	Dir string
	Log func(msg string) // nil: say nothing
	// At is called at each step of writing one secret, with the path the
	// step concerns; tests kill the process there. Nil in production.
	At func(step SecretStep, path string)
}

// SecretStep names a point in writing one secret.
type SecretStep string

const (
	SecretTempCreated SecretStep = "temp-created" // the empty temporary file exists
	SecretTempWritten SecretStep = "temp-written" // it holds the secret and is synced
	SecretPlaced      SecretStep = "placed"       // the secret has its name; the directory is not yet synced
)

// secretTempInfix marks the temporary files of SecretWriter.
const secretTempInfix = ".tmp-"

// Write generates what is missing; see SecretWriter.
func (w SecretWriter) Write() error {
	dir := w.Dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create secrets directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("create secrets directory: %w", err)
	}
	// What a killed writer left: never a secret, only its temporary file.
	stale, _ := filepath.Glob(filepath.Join(dir, ".*"+secretTempInfix+"*"))
	for _, p := range stale {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s, left by an interrupted run: %w", p, err)
		}
	}
	gen := map[string]func() (string, error){
		shim.SecretKeyFile:          djangoSecretKey,
		shim.FieldEncryptionKeyFile: fernetKey,
	}
	for _, name := range []string{shim.SecretKeyFile, shim.FieldEncryptionKeyFile} {
		path := filepath.Join(dir, name)
		replace := false
		if old, err := os.ReadFile(path); err == nil {
			why := unusableSecret(name, old)
			if why == "" {
				continue
			}
			replace = true
			if w.Log != nil {
				w.Log(fmt.Sprintf("secret %s %s, so nothing can have used it (an earlier run was interrupted while writing it): replaced it with a new one", path, why))
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("read secret %s: %w", path, err)
		}
		v, err := gen[name]()
		if err != nil {
			return err
		}
		if err := w.place(path, []byte(v), replace); err != nil {
			return fmt.Errorf("write secret %s: %w", path, err)
		}
	}
	return nil
}

// place puts data at path through a synced temporary file: by rename when
// replace is set, else by link, which keeps a secret another process
// placed first.
func (w SecretWriter) place(path string, data []byte, replace bool) error {
	at := func(step SecretStep, p string) {
		if w.At != nil {
			w.At(step, p)
		}
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+secretTempInfix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	at(SecretTempCreated, tmp)
	_, werr := f.Write(data)
	if err := errors.Join(werr, f.Chmod(0o600), f.Sync(), f.Close()); err != nil {
		return err
	}
	at(SecretTempWritten, tmp)
	if replace {
		err = os.Rename(tmp, path)
	} else if err = os.Link(tmp, path); errors.Is(err, fs.ErrExist) {
		return nil // another process made it first; keep theirs
	}
	if err != nil {
		return err
	}
	at(SecretPlaced, path)
	return atomicfile.SyncDir(dir)
}

// unusableSecret says why the content of secret file name cannot have
// been used by Django, or "" when it may have been.
func unusableSecret(name string, data []byte) string {
	v := strings.TrimSpace(string(data))
	if v == "" {
		return "is empty"
	}
	if name != shim.FieldEncryptionKeyFile {
		return ""
	}
	// django-encrypted-model-fields takes a comma-separated list of Fernet
	// keys and refuses to start on any other.
	for _, k := range strings.Split(v, ",") {
		if b, err := base64.URLEncoding.DecodeString(strings.TrimSpace(k)); err != nil || len(b) != 32 {
			return fmt.Sprintf("holds %d characters that are not a Fernet key", len(v))
		}
	}
	return ""
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
	// Output, if set, gives the writers for a child process's output by
	// its name ("migrate", "gunicorn"); otherwise Stdout and Stderr.
	Output func(source string) (stdout, stderr io.Writer)
	// Log, if set, receives messages of our own; otherwise Stderr.
	Log func(msg string)
	// Ready, if set, is called once the server answers.
	Ready func(url string)
}

// ControlDir is where gunicorn's control socket goes for a port, under
// the state directory: never the user's home, and one per server.
func ControlDir(stateDir string, port int) string {
	return filepath.Join(stateDir, "run", "gunicorn-"+strconv.Itoa(port))
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
	if o.Output == nil {
		o.Output = func(string) (io.Writer, io.Writer) { return o.Stdout, o.Stderr }
	}
	if o.Log == nil && o.Stderr != nil {
		o.Log = func(msg string) { fmt.Fprintln(o.Stderr, msg) }
	}
	secrets := SecretWriter{Dir: o.Secrets, Log: o.Log}
	if err := secrets.Write(); err != nil {
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
	migrate.Dir, migrate.Env = app, env
	migrate.Stdout, migrate.Stderr = o.Output("migrate")
	if err := migrate.Run(); err != nil {
		return fmt.Errorf("migrate the database in %s: %w", o.StateDir, err)
	}
	// The socket is ours, passed to gunicorn: a busy port fails here, at
	// once, and the readiness probe can only reach the server we start.
	ln, err := Listen(o.Address, o.Port)
	if err != nil {
		return err
	}
	sock, err := ln.(*net.TCPListener).File()
	ln.Close()
	if err != nil {
		return fmt.Errorf("pass the socket to gunicorn: %w", err)
	}
	// gunicorn 25.1 and later open a control socket in $XDG_RUNTIME_DIR,
	// or else in ~/.gunicorn: one of our own, per port, keeps it under
	// the state directory (--root) and apart from another run's.
	control := ControlDir(o.StateDir, o.Port)
	if err := os.MkdirAll(control, 0o700); err != nil {
		return fmt.Errorf("create gunicorn's control directory: %w", err)
	}
	gunicorn := exec.Command(filepath.Join(res.Path, VenvDir, "bin", "gunicorn"),
		"--bind", "fd://3", "--workers", strconv.Itoa(o.Workers),
		"--access-logfile", "-", res.Project+".wsgi")
	gunicorn.Dir, gunicorn.Env = app, append(env, "XDG_RUNTIME_DIR="+control)
	gunicorn.Stdout, gunicorn.Stderr = o.Output("gunicorn")
	gunicorn.ExtraFiles = []*os.File{sock} // fd 3
	err = gunicorn.Start()
	sock.Close() // gunicorn holds it now
	if err != nil {
		return fmt.Errorf("start gunicorn: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- gunicorn.Wait() }()
	if o.Ready != nil {
		go waitReady(ctx, base+"/", o.Ready)
	}
	select {
	case err := <-done:
		if ctx.Err() != nil {
			// Ctrl-C reached gunicorn too, and it stopped first.
			return nil
		}
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

// Listen opens the TCP socket run serves on, and says so plainly when
// another program holds the port.
func Listen(address string, port int) (net.Listener, error) {
	addr := net.JoinHostPort(address, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("port %d on %s is in use by another program (see which: ss -ltnp 'sport = :%d'): stop it, or give another --port", port, address, port)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}
