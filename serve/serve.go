// Package serve runs a built store path in the foreground, for run, and a
// live checkout against a locked venv, for dev: SQLite, secrets of their
// own, gunicorn or manage.py runserver until the context ends. The
// service under systemd is service's.
package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/service"
	"github.com/bitpoll-install/bitpoll-install/shim"
)

// Options run a store path in the foreground.
type Options struct {
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

// Run migrates the SQLite database in StateDir and runs gunicorn on the
// store path until ctx ends.
func Run(ctx context.Context, res *install.Result, o Options) error {
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
	secrets := service.SecretWriter{Dir: o.Secrets, Log: o.Log}
	if err := secrets.Write(); err != nil {
		return err
	}
	base := fmt.Sprintf("http://%s:%d", o.Address, o.Port)
	settings := shim.Settings{
		AllowedHosts: []string{o.Address, "localhost"},
		BaseURL:      base,
		Database:     shim.Database{Engine: "sqlite", Path: filepath.Join(o.StateDir, "db.sqlite3")},
		StaticRoot:   filepath.Join(res.Path, install.StaticDir),
		MediaRoot:    filepath.Join(o.StateDir, "media"),
	}
	env, err := install.ManagementEnv(settings, o.StateDir, o.Secrets)
	if err != nil {
		return err
	}
	app := filepath.Join(res.Path, install.AppDir)
	py := filepath.Join(res.Path, install.VenvDir, "bin", "python")
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
	gunicorn := exec.Command(filepath.Join(res.Path, install.VenvDir, "bin", "gunicorn"),
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
