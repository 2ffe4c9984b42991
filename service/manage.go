package service

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/bitpoll-install/bitpoll-install/store"
	"github.com/bitpoll-install/bitpoll-install/unitgen"
)

// notForManage are the [Service] settings of bitpoll.service that
// describe the web server's life cycle rather than its sandbox.
var notForManage = []string{"Type", "NotifyAccess", "ExecStart", "ExecReload", "Restart", "RestartSec", "TimeoutStopSec", "TimeoutStartSec"}

// ManageCommand is the systemd-run command line that runs `manage.py
// args` of the current generation as the service's own dynamic user, in
// the same sandbox, with the same settings file and credentials as
// bitpoll.service: every [Service] setting of the installed unit but its
// life cycle. With tty the command gets a terminal (createsuperuser,
// shell); otherwise its standard streams are piped.
func ManageCommand(l store.Layout, tty bool, args []string) ([]string, error) {
	path := filepath.Join(l.Root, UnitDir, unitgen.ServiceUnit)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read the installed service: %w (run bitpoll-install install first)", err)
	}
	defer f.Close()
	opts, err := unit.DeserializeOptions(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	argv := []string{"systemd-run", "--quiet", "--wait", "--collect", "--service-type=exec",
		"--unit=bitpoll-manage-" + fmt.Sprint(os.Getpid())}
	if tty {
		argv = append(argv, "--pty")
	} else {
		argv = append(argv, "--pipe")
	}
	for _, o := range opts {
		if o.Section != "Service" || slices.Contains(notForManage, o.Name) {
			continue
		}
		argv = append(argv, "--property="+o.Name+"="+o.Value)
	}
	p := unitgen.DefaultPaths()
	python := filepath.Join(p.Current, p.Venv, "bin", "python")
	return append(append(argv, "--", python, filepath.Join(p.Current, p.App, "manage.py")), args...), nil
}
