package service

import (
	"context"
	"fmt"

	"github.com/coreos/go-systemd/v22/dbus"

	"github.com/bitpoll-install/bitpoll-install/unitgen"
)

// restart reloads systemd's view of the unit files, enables the socket
// and the service, starts the socket and (re)starts the service, waiting
// for each job. It talks to systemd over its private D-Bus socket, so no
// bus daemon is needed. With changed false a running service is left
// alone.
func restart(ctx context.Context, changed bool) error {
	conn, err := dbus.NewSystemdConnectionContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to systemd: %w (is this a systemd system, and are you root?)", err)
	}
	defer conn.Close()
	if err := conn.ReloadContext(ctx); err != nil {
		return fmt.Errorf("systemd daemon-reload: %w", err)
	}
	if _, _, err := conn.EnableUnitFilesContext(ctx, []string{unitgen.SocketUnit, unitgen.ServiceUnit}, false, true); err != nil {
		return fmt.Errorf("enable %s and %s: %w", unitgen.SocketUnit, unitgen.ServiceUnit, err)
	}
	if err := job(ctx, unitgen.SocketUnit, "start", func(ch chan<- string) (int, error) {
		return conn.StartUnitContext(ctx, unitgen.SocketUnit, "replace", ch)
	}); err != nil {
		return err
	}
	do, verb := conn.RestartUnitContext, "restart"
	if !changed {
		do, verb = conn.StartUnitContext, "start"
	}
	return job(ctx, unitgen.ServiceUnit, verb, func(ch chan<- string) (int, error) {
		return do(ctx, unitgen.ServiceUnit, "replace", ch)
	})
}

// job runs one systemd job and waits for its result.
func job(ctx context.Context, unit, verb string, start func(chan<- string) (int, error)) error {
	ch := make(chan string, 1)
	if _, err := start(ch); err != nil {
		return fmt.Errorf("%s %s: %w", verb, unit, err)
	}
	select {
	case res := <-ch:
		if res != "done" {
			return fmt.Errorf("%s %s: the job ended %q: see journalctl -u %s", verb, unit, res, unit)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s %s: %w", verb, unit, ctx.Err())
	}
}
