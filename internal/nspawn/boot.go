package nspawn

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Machine is a booted container: the tree with its own systemd as PID 1.
// Its changes go to an upper directory on the host, so they survive a
// reboot and the cached tree stays as it is.
type Machine struct {
	o     Options
	name  string
	upper string // overlay upper directory: the machine's own changes
	cmd   *exec.Cmd
	done  chan error
	pid   int // the container's PID 1, as the host sees it
	log   *os.File
}

// Boot starts a machine from o.Rootfs with o.Binds. The network is the
// host's: a service on 127.0.0.1 inside answers on the host.
func Boot(ctx context.Context, tb testing.TB, o Options, name string) *Machine {
	tb.Helper()
	dir := tb.TempDir()
	m := &Machine{o: o, name: name, upper: filepath.Join(dir, "upper")}
	if err := os.MkdirAll(m.upper, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := m.start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := m.Poweroff(); err != nil {
			tb.Logf("power off %s: %v", name, err)
		}
	})
	return m
}

// Upper is the host path of an absolute path inside the machine as
// written there: files put here before a boot appear inside.
func (m *Machine) Upper(path string) string { return filepath.Join(m.upper, path) }

func (m *Machine) start(ctx context.Context) error {
	log, err := os.OpenFile(m.consoleLog(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	args := append(m.o.args(),
		"--overlay="+m.o.Rootfs+":"+m.upper+":/", "-M", m.name, "--boot",
		// BPF-based directives (IPAddressDeny=, SocketBind*=) need these.
		"--capability=CAP_NET_ADMIN,CAP_BPF,CAP_PERFMON", "--system-call-filter=bpf",
		"--console=read-only")
	cmd := exec.Command("systemd-nspawn", args...)
	cmd.Env = append(os.Environ(), "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cg, removeCg, err := ownCgroup(m.name)
	if err != nil {
		log.Close()
		return fmt.Errorf("boot %s: %w", m.name, err)
	}
	if cg != nil {
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(cg.Fd())
	}
	if err := cmd.Start(); err != nil {
		removeCg()
		log.Close()
		return fmt.Errorf("boot %s: %w", m.name, err)
	}
	m.cmd, m.log, m.done = cmd, log, make(chan error, 1)
	go func() {
		err := cmd.Wait()
		removeCg()
		m.done <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for m.pid == 0 {
		if m.pid = initPID(cmd.Process.Pid); m.pid != 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("boot %s: no PID 1 after 30 s; console:\n%s", m.name, m.Console())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Until systemd has taken over PID 1 and opened its bus, the answer
	// is "offline"; then --wait waits for the boot to finish.
	deadline = time.Now().Add(2 * time.Minute)
	for {
		out, _ := m.Command(ctx, nil, "systemctl", "is-system-running", "--wait").Output()
		state := strings.TrimSpace(string(out))
		if state == "running" || state == "degraded" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("boot %s: system is %q after 2 minutes; console:\n%s", m.name, state, m.Console())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// initPID is the machine's PID 1 as the host sees it, or 0 while there is
// none: the child of nspawn in a PID namespace of its own. nspawn first
// forks an intermediate process in the host's namespace, which starts
// PID 1 and exits; taking it for PID 1 made every later nsenter fail.
func initPID(nspawn int) int {
	host, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return 0
	}
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", nspawn, nspawn))
	for _, f := range strings.Fields(string(data)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err == nil && ns != host {
			return pid
		}
	}
	return 0
}

// consoleLog is the host file the console goes to, beside the upper
// directory.
func (m *Machine) consoleLog() string { return filepath.Join(filepath.Dir(m.upper), "console.log") }

// Console is what the machine printed on its console so far.
func (m *Machine) Console() string {
	data, _ := os.ReadFile(m.consoleLog())
	return string(data)
}

// Command runs argv inside the machine, in all its namespaces, with a
// clean environment plus env.
func (m *Machine) Command(ctx context.Context, env []string, argv ...string) *exec.Cmd {
	args := []string{"-t", strconv.Itoa(m.pid), "-a", "env", "-i",
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8",
		"SSL_CERT_FILE=" + hostCerts + "/ca-certificates.crt"}
	args = append(append(args, env...), argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	// A session of its own, as an admin's login has: the kernel's
	// autogroups then weigh it apart from the test's load generator.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return cmd
}

// Exec runs argv inside and returns its combined output.
func (m *Machine) Exec(ctx context.Context, argv ...string) ([]byte, error) {
	out, err := m.Command(ctx, nil, argv...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("in %s: %s: %w\n%s", m.name, strings.Join(argv, " "), err, out)
	}
	return out, nil
}

// Reboot restarts the machine: systemd inside goes down in order, nspawn
// exits, and the same tree with its changes boots again.
func (m *Machine) Reboot(ctx context.Context) error {
	if err := m.stop("reboot"); err != nil {
		return err
	}
	return m.start(ctx)
}

// Poweroff shuts the machine down and waits for it.
func (m *Machine) Poweroff() error {
	if m.cmd == nil {
		return nil
	}
	return m.stop("poweroff")
}

func (m *Machine) stop(verb string) error {
	m.Command(context.Background(), nil, "systemctl", verb).Run()
	var err error
	select {
	case err = <-m.done:
	case <-time.After(60 * time.Second):
		m.cmd.Process.Signal(syscall.SIGKILL)
		err = fmt.Errorf("%s %s: still running after 60 s; killed", verb, m.name)
		<-m.done
	}
	m.log.Close()
	m.cmd, m.pid = nil, 0
	// nspawn exits non-zero after a reboot or poweroff from inside.
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return err
	}
	return nil
}
