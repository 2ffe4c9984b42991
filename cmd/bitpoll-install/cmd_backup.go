package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bitpoll-install/bitpoll-install/backup"
	"github.com/bitpoll-install/bitpoll-install/progress"
	"github.com/bitpoll-install/bitpoll-install/service"
	"github.com/bitpoll-install/bitpoll-install/store"
)

type backupOptions struct {
	configOptions
	switchOptions
	Output    string
	NoSecrets bool
	Verify    string
}

func newBackupCommand(g *globalOptions) *cobra.Command {
	var o backupOptions
	c := &cobra.Command{
		Use:   "backup [-o FILE] [--no-secrets] | backup --verify FILE",
		Short: "Back up the database, media, config and secrets while the service runs; --verify drills a restore",
		Long: `Write one archive of the installation while the service runs: the
database, copied consistent as of one moment (SQLite through its online
backup API, PostgreSQL with pg_dump), the media, /etc/bitpoll with its
secrets, and the current generation's record and store manifest (the app
pin and every wheel). The store lock is held meanwhile, so no upgrade
changes the schema halfway.

The archive is root-only (0600). Its last member is a manifest of every
other member's size and sha256, which restore and --verify check before
they trust any. Without -o it goes to /var/backups/bitpoll/.

Secrets are included by default: FIELD_ENCRYPTION_KEY encrypts the CalDAV
credentials stored in the database, so a backup without it cannot bring
them back. --no-secrets leaves them out, and warns so.

--verify FILE is a restore drill: it restores the backup into a scratch
directory, checks every member against the manifest, runs SQLite's
PRAGMA integrity_check and migrate --check with the current generation's
code, and counts the polls and votes. Nothing live is touched. (For
PostgreSQL it has pg_restore read the dump.)

Exit codes: 0 written (or the drill passed), 1 failed or refused, 2 usage
error.`,
		Example: `  sudo bitpoll-install backup
  sudo bitpoll-install backup -o /srv/backups/bitpoll.tar.gz
  sudo bitpoll-install backup --verify /srv/backups/bitpoll.tar.gz`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBackup(cmd.Context(), g, o)
		},
	}
	o.configOptions.AddFlags(c)
	c.Flags().BoolVar(&o.NoWait, "no-wait", false, "fail at once when another bitpoll-install holds the store lock, instead of waiting for it")
	c.Flags().StringVarP(&o.Output, "output", "o", "", "write the backup to `FILE` (default: a new file in /var/backups/bitpoll)")
	c.Flags().BoolVar(&o.NoSecrets, "no-secrets", false, "leave the secrets out (a restore then cannot decrypt the stored CalDAV credentials unless the key is still in place)")
	c.Flags().StringVar(&o.Verify, "verify", "", "restore the backup `FILE` into a scratch directory and check it, instead of writing one")
	return c
}

// currentPlan takes the store lock and prepares the current generation.
func (o *backupOptions) currentPlan(ctx context.Context, g *globalOptions, layout store.Layout) (*store.Store, *service.Plan, store.Generation, func() error, error) {
	cfg, err := o.configOptions.load(g)
	if err != nil {
		return nil, nil, store.Generation{}, nil, err
	}
	st, unlock, err := o.lockStore(ctx, g, layout)
	if err != nil {
		return nil, nil, store.Generation{}, nil, err
	}
	cur, ok, err := st.CurrentGeneration()
	if err == nil && !ok {
		err = fmt.Errorf("no generation is current in %s: run bitpoll-install install first", layout.Current())
	}
	var meta store.Meta
	if err == nil {
		meta, err = st.ReadMeta(cur.N)
	}
	var plan *service.Plan
	if err == nil {
		io := installOptions{configOptions: o.configOptions, switchOptions: o.switchOptions}
		plan, err = service.PrepareFor(meta.StorePath, io.serviceOptions(g, cfg, layout, g.Root == ""))
	}
	if err != nil {
		unlock()
		return nil, nil, store.Generation{}, nil, err
	}
	return st, plan, cur, unlock, nil
}

func runBackup(ctx context.Context, g *globalOptions, o backupOptions) error {
	layout := store.Layout{Root: g.Root}
	if g.Root == "" && os.Geteuid() != 0 {
		return &usageError{errors.New("backup reads the database and the secrets: run it as root, or with --root DIR")}
	}
	if o.Verify != "" && (o.Output != "" || o.NoSecrets) {
		return &usageError{errors.New("--verify checks an existing backup: give it without -o and --no-secrets")}
	}
	st, plan, cur, unlock, err := o.currentPlan(ctx, g, layout)
	if err != nil {
		return err
	}
	defer unlock()
	if o.Verify != "" {
		d, err := backup.Drill(ctx, plan, cur.N, o.Verify, plan.StateDir())
		if err != nil {
			return err
		}
		printDrill(g, d)
		return nil
	}
	rep := newReporter(g)
	r, err := backup.Create(ctx, st, plan, layout, backup.Options{Output: o.Output, NoSecrets: o.NoSecrets, Log: func(m string) { rep.Notef("%s", m) }})
	if err != nil {
		return err
	}
	if g.JSON {
		writeJSONLine(g.stdout, backupRecord{"backup", r.Path, r.Size, r.Members, r.Database, r.Generation, r.AppVersion, r.Secrets, r.Duration.Seconds()})
		return nil
	}
	secrets := "with secrets"
	if !r.Secrets {
		secrets = "without secrets"
	}
	fmt.Fprintf(g.stdout, "wrote %s (%s, %d members, %s database, %s) of generation %d (%s) in %.1fs\n",
		r.Path, progress.FormatBytes(r.Size), r.Members, r.Database, secrets, r.Generation, r.AppVersion, r.Duration.Seconds())
	return nil
}

type backupRecord struct {
	MessageType string  `json:"message_type"` // "backup"
	Path        string  `json:"path"`
	Size        int64   `json:"size"`
	Members     int     `json:"members"`
	Database    string  `json:"database"`
	Generation  int     `json:"generation"`
	AppVersion  string  `json:"app_version"`
	Secrets     bool    `json:"secrets"`
	Seconds     float64 `json:"seconds"`
}

type drillRecord struct {
	MessageType string   `json:"message_type"` // "backup_verify"
	Archive     string   `json:"archive"`
	Size        int64    `json:"size"`
	Created     string   `json:"created"`
	Generation  int      `json:"generation"`
	AppVersion  string   `json:"app_version"`
	Database    string   `json:"database"`
	Secrets     bool     `json:"secrets"`
	Members     int      `json:"members"`
	Integrity   *string  `json:"integrity"`
	Unapplied   []string `json:"unapplied"`
	Polls       int      `json:"polls"`
	Votes       int      `json:"votes"`
	Checked     []string `json:"checked"`
	Seconds     float64  `json:"seconds"`
}

func printDrill(g *globalOptions, d *backup.DrillResult) {
	if g.JSON {
		writeJSONLine(g.stdout, drillRecord{"backup_verify", d.Archive, d.Size, d.Created.Format("2006-01-02T15:04:05Z07:00"), d.Generation, d.AppVersion,
			d.Database, d.Secrets, d.Members, optional(d.Integrity), list(d.Unapplied), d.Polls, d.Votes, list(d.Checked), d.Duration.Seconds()})
		return
	}
	w := g.stdout
	fmt.Fprintf(w, "%s: a backup of generation %d (%s %s), %s, taken %s\n", d.Archive, d.Generation, d.App, d.AppVersion, progress.FormatBytes(d.Size), d.Created.Format("2006-01-02 15:04:05 MST"))
	fmt.Fprintf(w, "checked: %s\n", strings.Join(d.Checked, "; "))
	if d.Database == "sqlite" {
		fmt.Fprintf(w, "integrity_check: %s\n", d.Integrity)
		if len(d.Unapplied) > 0 {
			fmt.Fprintf(w, "migrate --check: %d migrations of the current generation to apply on restore (%s)\n", len(d.Unapplied), strings.Join(d.Unapplied, ", "))
		} else {
			fmt.Fprintln(w, "migrate --check: fully migrated for the current generation")
		}
		fmt.Fprintf(w, "polls: %d, votes: %d\n", d.Polls, d.Votes)
	}
	if !d.Secrets {
		fmt.Fprintln(w, "this backup holds no secrets: a restore keeps the secrets in place")
	}
	fmt.Fprintf(w, "the restore drill passed in %.1fs\n", d.Duration.Seconds())
}
