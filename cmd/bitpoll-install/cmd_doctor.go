package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	bitpollinstall "github.com/bitpoll-install/bitpoll-install"
	"github.com/bitpoll-install/bitpoll-install/doctor"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/store"
)

func newDoctorCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check the installation: each check prints ok or a one-line fix",
		Long: `Check the installation and print one line per check: ok, or what is
wrong and a one-line fix. It changes nothing.

  config         bitpoll.toml is valid, and installed as it is
  secrets        /etc/bitpoll/secrets and every secret in it are root's alone
                 (0700, 0600), and the secrets the config needs exist
  interpreter    the Python the current generation was built on still runs
                 and is the same (a distro upgrade breaks the venv; the fix
                 is the rebuild command)
  store          the store is as it was sealed: structure in full, content
                 for a 1% sample (verify rehashes everything)
  units          the units are installed, and bitpoll.socket and the current
                 bitpoll@N.service enabled
  socket         bitpoll.socket is active and takes a connection
  database       the current code reaches the database, which has all of its
                 migrations and none it does not know (SQLite: and passes
                 integrity_check)
  disk           each file system has room for an upgrade's store path and
                 snapshot, and 256 MiB beyond
  allowed-hosts  base_url's host is in allowed_hosts
  clock, proxy   with secure_proxy_ssl_header: the clock is synchronized,
                 base_url is https, and only local clients reach gunicorn

With --root DIR systemd is not asked: the units check looks at the files
alone, the socket check is skipped, and the database check runs the code
directly. A check that needs another (database needs interpreter) is
skipped when that one fails.

Exits 0 when every check passed or was skipped, 1 when any failed.`,
		Example: `  sudo bitpoll-install doctor
  sudo bitpoll-install doctor --json | jq 'select(.status == "fail") | .fix'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDoctor(cmd.Context(), g)
		},
	}
}

type doctorCheckRecord struct {
	MessageType string  `json:"message_type"` // "doctor_check"
	Check       string  `json:"check"`
	Status      string  `json:"status"`
	Detail      string  `json:"detail"`
	Fix         *string `json:"fix"`
}

type doctorSummaryRecord struct {
	MessageType string `json:"message_type"` // "doctor_summary"
	Checks      int    `json:"checks"`
	Failed      int    `json:"failed"`
	Skipped     int    `json:"skipped"`
	Healthy     bool   `json:"healthy"`
}

func runDoctor(ctx context.Context, g *globalOptions) error {
	o := doctor.Options{Layout: store.Layout{Root: g.Root}, Systemd: g.Root == ""}
	if l, err := lockfile.Parse(bitpollinstall.DefaultLock, "built-in bitpoll.lock"); err == nil {
		o.BuiltinTree = l.App.Tree
	}
	results := doctor.Run(ctx, o, func(r doctor.Result) {
		if g.JSON {
			writeJSONLine(g.stdout, doctorCheckRecord{"doctor_check", r.Check, string(r.Status), r.Detail, optional(r.Fix)})
		} else {
			fmt.Fprintln(g.stdout, r)
		}
	})
	failed, skipped := doctor.Failures(results), 0
	for _, r := range results {
		if r.Status == doctor.Skipped {
			skipped++
		}
	}
	if g.JSON {
		writeJSONLine(g.stdout, doctorSummaryRecord{"doctor_summary", len(results), failed, skipped, failed == 0})
	}
	if failed > 0 {
		return &exitError{code: exitFailure, msg: fmt.Sprintf("%s of %d failed; each says its fix above", plural(failed, "check", "checks"), len(results))}
	}
	if !g.JSON {
		fmt.Fprintf(g.stdout, "healthy: %d checks passed, %d skipped\n", len(results)-skipped, skipped)
	}
	return nil
}
