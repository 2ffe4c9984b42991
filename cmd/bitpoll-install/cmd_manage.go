package main

import (
	"errors"
	"os"
	"os/exec"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/bitpoll-install/bitpoll-install/service"
	"github.com/bitpoll-install/bitpoll-install/store"
)

func newManageCommand(g *globalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "manage [--] ARGS...",
		Short: "Run a Django management command against the installed service",
		Long: `Run manage.py ARGS of the current generation as the service's own
dynamic user, in the same sandbox, with the same settings file and
credentials as bitpoll.service (through systemd-run). The command gets the
terminal when there is one, so createsuperuser and shell work. Its exit
code is manage's own.`,
		Example: `  sudo bitpoll-install manage createsuperuser
  sudo bitpoll-install manage -- showmigrations poll`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runManage(g, args)
		},
	}
	// Flags after the first argument are manage.py's own.
	c.Flags().SetInterspersed(false)
	return c
}

func runManage(g *globalOptions, args []string) error {
	if g.Root != "" {
		return &usageError{errors.New("manage runs against the installed service through systemd: it cannot be used with --root")}
	}
	if os.Geteuid() != 0 {
		return &usageError{errors.New("manage starts a sandboxed unit as the service user: run it as root")}
	}
	// With --json its lines are log records, so it gets no terminal.
	tty := !g.JSON && term.IsTerminal(int(os.Stdin.Fd()))
	argv, err := service.ManageCommand(store.Layout{}, tty, args)
	if err != nil {
		return err
	}
	stdout, stderr, flush := g.childOutput("manage.py")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	err = cmd.Run()
	flush()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &exitError{code: ee.ExitCode()}
	}
	return err
}
