package service

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/store"
	"github.com/bitpoll-install/bitpoll-install/unitgen"
)

// ManageCommand is the systemd-run command line that runs `manage.py
// args` of the current generation as the service's own dynamic user, in
// the same sandbox, with the same settings file and credentials as
// bitpoll.service: every [Service] setting of the installed unit but its
// life cycle. With tty the command gets a terminal (createsuperuser,
// shell); otherwise its standard streams are piped.
func ManageCommand(l store.Layout, tty bool, args []string) ([]string, error) {
	props, err := sandboxProperties(l)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(l)
	if err != nil {
		return nil, err
	}
	cur, ok, err := st.CurrentGeneration()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("no generation is current in %s: run bitpoll-install install first", l.Current())
	}
	argv := []string{"systemd-run", "--quiet", "--wait", "--collect", "--service-type=exec",
		"--unit=bitpoll-manage-" + fmt.Sprint(os.Getpid())}
	if tty {
		argv = append(argv, "--pty")
	} else {
		argv = append(argv, "--pipe")
	}
	argv = append(argv, instance(props, cur.N)...)
	gen := filepath.Join(unitgen.DefaultPaths().Generations, strconv.Itoa(cur.N))
	python := filepath.Join(gen, install.VenvDir, "bin", "python")
	return append(append(argv, "--", python, filepath.Join(gen, install.AppDir, "manage.py")), args...), nil
}
