package service

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
)

// systemd is a connection to the running systemd over its private D-Bus
// socket, so no bus daemon is needed.
type systemd struct {
	ctx  context.Context
	conn *dbus.Conn
}

// withSystemd connects, calls f and disconnects.
func withSystemd(ctx context.Context, f func(*systemd) error) error {
	conn, err := dbus.NewSystemdConnectionContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to systemd: %w (is this a systemd system, and are you root?)", err)
	}
	defer conn.Close()
	return f(&systemd{ctx: ctx, conn: conn})
}

func (s *systemd) reload() error {
	if err := s.conn.ReloadContext(s.ctx); err != nil {
		return fmt.Errorf("systemd daemon-reload: %w", err)
	}
	return nil
}

func (s *systemd) enable(units ...string) error {
	if _, _, err := s.conn.EnableUnitFilesContext(s.ctx, units, false, true); err != nil {
		return fmt.Errorf("enable %s: %w", strings.Join(units, ", "), err)
	}
	return nil
}

func (s *systemd) disable(units ...string) error {
	if _, err := s.conn.DisableUnitFilesContext(s.ctx, units, false); err != nil {
		return fmt.Errorf("disable %s: %w", strings.Join(units, ", "), err)
	}
	return nil
}

func (s *systemd) start(unit string) error {
	return s.job(unit, "start", func(ch chan<- string) (int, error) {
		return s.conn.StartUnitContext(s.ctx, unit, "replace", ch)
	})
}

func (s *systemd) stop(unit string) error {
	return s.job(unit, "stop", func(ch chan<- string) (int, error) {
		return s.conn.StopUnitContext(s.ctx, unit, "replace", ch)
	})
}

// job runs one systemd job and waits for its result; a failure carries
// the unit's last journal lines.
func (s *systemd) job(unit, verb string, start func(chan<- string) (int, error)) error {
	ch := make(chan string, 1)
	if _, err := start(ch); err != nil {
		return fmt.Errorf("%s %s: %w", verb, unit, err)
	}
	select {
	case res := <-ch:
		if res != "done" {
			return fmt.Errorf("%s %s: the job ended %q; its journal (journalctl -u %s):\n%s", verb, unit, res, unit, journal(unit, 20))
		}
		return nil
	case <-s.ctx.Done():
		return fmt.Errorf("%s %s: %w", verb, unit, s.ctx.Err())
	}
}

// waitWorkers waits until unit's control group holds its main process and
// workers: with --preload a forked worker accepts at once, so from then on
// the unit answers on the shared socket.
func (s *systemd) waitWorkers(unit string, workers int, timeout time.Duration) error {
	p, err := s.conn.GetUnitTypePropertyContext(s.ctx, unit, "Service", "ControlGroup")
	if err != nil {
		return fmt.Errorf("read the control group of %s: %w", unit, err)
	}
	cg := strings.Trim(p.Value.String(), `"`)
	procs := filepath.Join("/sys/fs/cgroup", cg, "cgroup.procs")
	deadline := time.Now().Add(timeout)
	for {
		data, err := os.ReadFile(procs)
		if err == nil && len(strings.Fields(string(data))) >= workers+1 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not start its %d workers within %v; its journal:\n%s", unit, workers, timeout, journal(unit, 20))
		}
		select {
		case <-s.ctx.Done():
			return s.ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// journal is unit's last n journal lines, for error messages.
func journal(unit string, n int) string {
	out, err := exec.Command("journalctl", "--no-pager", "-o", "cat", "-n", fmt.Sprint(n), "-u", unit).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("(journalctl: %v)", err)
	}
	return strings.TrimSpace(string(out))
}
