package service

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/shim"
	"github.com/bitpoll-install/bitpoll-install/store"
	"github.com/bitpoll-install/bitpoll-install/unitgen"
)

// runner runs a generation's own code against the configured database, as
// the service would: under systemd as the service's dynamic user in its
// sandbox, with --root directly as the caller.
type runner interface {
	// python runs generation n's interpreter with args in its app
	// directory and returns what it printed.
	python(ctx context.Context, n int, args ...string) ([]byte, error)
	// migrate runs generation n's migrations once (the stamp).
	migrate(ctx context.Context, n int) error
	// startGate starts generation n's gunicorn on a private unix socket,
	// returns the socket's host path and a func that stops it.
	startGate(ctx context.Context, n int, project string) (sock string, stop func() string, err error)
}

// gateSocket is where a gate's gunicorn listens, inside the state directory
// that the sandbox shares with the host.
func gateSocket(n int) string { return "gate-" + strconv.Itoa(n) + ".sock" }

// gunicornGateArgs runs one worker of the generation in genDir; with an
// empty bind it takes its socket from systemd, as the service does.
func gunicornGateArgs(genDir, bind, project string) []string {
	argv := []string{filepath.Join(genDir, install.VenvDir, "bin", "gunicorn")}
	if bind != "" {
		argv = append(argv, "--bind", "unix:"+bind)
	}
	return append(argv, "--workers", "1", "--preload", "--no-control-socket", "--access-logfile", "-", "--error-logfile", "-", project+".wsgi")
}

// systemdRunner runs in transient units with every [Service] setting of
// the installed bitpoll@.service but its life cycle and its socket.
type systemdRunner struct {
	l     store.Layout
	props []string // --property= arguments, %i not yet replaced
	seq   int
}

// NotForRun are the settings of bitpoll@.service that describe the web
// server's life cycle and its listening socket rather than its sandbox:
// what manage, the migrations and the gate run without. The NixOS
// module's bitpoll-manage leaves out the same, which a test checks.
var NotForRun = []string{"Type", "NotifyAccess", "ExecStart", "ExecReload", "Restart", "RestartSec", "TimeoutStopSec", "TimeoutStartSec", "Sockets"}

// sandboxProperties reads the installed template's sandbox as
// systemd-run --property= arguments, with %i still in them.
func sandboxProperties(l store.Layout) ([]string, error) {
	path := filepath.Join(l.Root, UnitDir, unitgen.ServiceTemplate)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read the installed service: %w (run bitpoll-install install first)", err)
	}
	defer f.Close()
	opts, err := unit.DeserializeOptions(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var props []string
	for _, o := range opts {
		if o.Section != "Service" || slices.Contains(NotForRun, o.Name) {
			continue
		}
		props = append(props, "--property="+o.Name+"="+o.Value)
	}
	return props, nil
}

// instance replaces the template's %i with n: a transient unit has no
// instance of its own.
func instance(props []string, n int) []string {
	out := make([]string, len(props))
	for i, p := range props {
		out[i] = strings.ReplaceAll(p, "%i", strconv.Itoa(n))
	}
	return out
}

// backgroundCPU and backgroundNice are the CPU share of what a switch
// runs beside the serving generation (its checks, reversals and gate), so
// that on a busy machine requests keep the CPU and the switch takes
// longer instead: a fifth of a service's default CPU weight, which acts
// where the kernel splits CPU between cgroups, and a nice value, which
// acts where it does not (cgroup v1 without the cpu controller in
// systemd's hands, as in a container).
const backgroundCPU, backgroundNice = "--property=CPUWeight=20", "--nice=10"

func (r *systemdRunner) unitName(what string) string {
	r.seq++
	return fmt.Sprintf("bitpoll-%s-%d-%d", what, os.Getpid(), r.seq)
}

func (r *systemdRunner) python(ctx context.Context, n int, args ...string) ([]byte, error) {
	gen := filepath.Join(unitgen.DefaultPaths().Generations, strconv.Itoa(n))
	name := r.unitName("run")
	argv := []string{"--quiet", "--wait", "--collect", "--pipe", "--service-type=exec", "--unit=" + name}
	argv = append(append(argv, instance(r.props, n)...), backgroundCPU, backgroundNice)
	argv = append(argv, "--", filepath.Join(gen, install.VenvDir, "bin", "python"))
	cmd := exec.CommandContext(ctx, "systemd-run", append(argv, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil && len(bytes.TrimSpace(out.Bytes())) == 0 {
		// The unit failed before the program said anything (a sandbox
		// setting, a resource): --quiet hid systemd's reason, the journal
		// has it.
		fmt.Fprintf(&out, "systemd-run printed nothing; the journal of %s:\n%s", name, journal(name, 20))
	}
	return out.Bytes(), err
}

func (r *systemdRunner) migrate(ctx context.Context, n int) error {
	return withSystemd(ctx, func(s *systemd) error { return s.start(unitgen.MigrateUnit(n)) })
}

// startGate runs the gate in a transient service behind a transient
// socket on the host's /run: the sandbox may bind no socket itself
// (SocketBindDeny=, and seccomp refuses the chown of a unix socket), so,
// like the service, it takes its socket from systemd.
func (r *systemdRunner) startGate(ctx context.Context, n int, project string) (string, func() string, error) {
	gen := filepath.Join(unitgen.DefaultPaths().Generations, strconv.Itoa(n))
	name := fmt.Sprintf("bitpoll-gate-%d", n)
	sock := filepath.Join("/run", name+".sock")
	// A gate left by a killed run would hold the name.
	_ = exec.CommandContext(ctx, "systemctl", "stop", name+".socket", name+".service").Run()
	argv := []string{"--quiet", "--collect", "--service-type=exec", "--unit=" + name,
		"--socket-property=ListenStream=" + sock, "--socket-property=RemoveOnStop=yes", "--socket-property=SocketMode=0600"}
	argv = append(append(argv, instance(r.props, n)...), backgroundCPU, backgroundNice, "--")
	cmd := exec.CommandContext(ctx, "systemd-run", append(argv, gunicornGateArgs(gen, "", project)...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("start the health gate of generation %d: %w\n%s", n, err, out)
	}
	stop := func() string {
		logs := journal(name+".service", 30)
		_ = exec.Command("systemctl", "stop", name+".socket", name+".service").Run()
		return logs
	}
	return sock, stop, nil
}

// directRunner runs the code as the caller, with settings whose paths
// lie under the layout's root: a trial with --root has no service
// manager and no sandbox.
type directRunner struct {
	l        store.Layout
	settings shim.Settings // with rooted paths
	stamp    string        // the database settings' stamp
	// secrets and settingsFile, when set, replace the layout's secrets
	// directory and the settings file in the state directory (a restore
	// drill runs on a scratch copy).
	secrets, settingsFile string
}

func (r *directRunner) env(n int) ([]string, error) {
	s := r.settings
	gen := r.genDir(n)
	data, err := s.Marshal()
	if err != nil {
		return nil, err
	}
	path, secrets := filepath.Join(r.l.StateDir(), "settings-direct.json"), r.l.SecretsDir()
	if r.settingsFile != "" {
		path = r.settingsFile
	}
	if r.secrets != "" {
		secrets = r.secrets
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return nil, fmt.Errorf("write settings for --root: %w", err)
	}
	env := []string{shim.SettingsFileEnv + "=" + path, shim.SecretsDirEnv + "=" + secrets,
		shim.StaticRootEnv + "=" + filepath.Join(gen, install.StaticDir), "PYTHONDONTWRITEBYTECODE=1"}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PYTHON") || k == "VIRTUAL_ENV" || k == "DJANGO_SETTINGS_MODULE" || strings.HasPrefix(k, "BITPOLL_") || k == shim.CredentialsEnv {
			continue
		}
		env = append(env, kv)
	}
	return env, nil
}

func (r *directRunner) genDir(n int) string {
	return filepath.Join(r.l.GenerationsDir(), strconv.Itoa(n))
}

func (r *directRunner) command(ctx context.Context, n int, argv ...string) (*exec.Cmd, error) {
	env, err := r.env(n)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = filepath.Join(r.genDir(n), install.AppDir), env
	return cmd, nil
}

func (r *directRunner) python(ctx context.Context, n int, args ...string) ([]byte, error) {
	cmd, err := r.command(ctx, n, append([]string{filepath.Join(r.genDir(n), install.VenvDir, "bin", "python")}, args...)...)
	if err != nil {
		return nil, err
	}
	return cmd.CombinedOutput()
}

// migrate runs what bitpoll-migrate@.service runs, stamp and all.
func (r *directRunner) migrate(ctx context.Context, n int) error {
	target, err := filepath.EvalSymlinks(r.genDir(n))
	if err != nil {
		return err
	}
	stamp := filepath.Join(r.l.Root, unitgen.MigratedDir, filepath.Base(target)+"-"+r.stamp)
	if _, err := os.Stat(stamp); err == nil {
		return nil
	}
	out, err := r.python(ctx, n, "manage.py", "migrate", "--noinput")
	if err != nil {
		return fmt.Errorf("migrate generation %d: %w\n%s", n, err, lastLines(out, 20))
	}
	if err := os.MkdirAll(filepath.Dir(stamp), 0o755); err != nil {
		return err
	}
	return os.WriteFile(stamp, nil, 0o644)
}

func (r *directRunner) startGate(ctx context.Context, n int, project string) (string, func() string, error) {
	sock := filepath.Join(r.l.StateDir(), gateSocket(n))
	_ = os.Remove(sock)
	cmd, err := r.command(context.WithoutCancel(ctx), n, gunicornGateArgs(r.genDir(n), sock, project)...)
	if err != nil {
		return "", nil, err
	}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start the health gate of generation %d: %w", n, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop := func() string {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		_ = os.Remove(sock)
		return lastLines(logs.Bytes(), 30)
	}
	return sock, stop, nil
}

// probe asks the gate for / over its unix socket, with a Host the site
// allows (ALLOWED_HOSTS answers 400 to any other) and, behind a TLS
// proxy, the header that says the request came over https, until it
// answers or the timeout passes. Only 200 passes.
func probe(ctx context.Context, sock, host string, https bool, timeout time.Duration) error {
	// The first answer may wait for the app's import: the whole timeout.
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/", nil)
		if err != nil {
			return err
		}
		if https {
			req.Header.Set("X-Forwarded-Proto", "https")
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			// An answer other than 200 is final: the app is up and says no.
			return fmt.Errorf("GET / with Host %s answered %s, want 200", host, resp.Status)
		}
		last = err
		if time.Now().After(deadline) {
			return fmt.Errorf("GET / with Host %s had no answer within %v: %w", host, timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
