package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bitpoll-install/bitpoll-install/backup"
	"github.com/bitpoll-install/bitpoll-install/store"
)

func newRestoreCommand(g *globalOptions) *cobra.Command {
	var o backupOptions
	c := &cobra.Command{
		Use:   "restore FILE",
		Short: "Restore a backup: verified in full first, then put in place and migrated to the current generation",
		Long: `Restore the backup FILE (written by bitpoll-install backup) into the
current generation.

Before anything changes, every member is checked against the archive's
manifest (size and sha256), and the backup is restored into a directory
beside the live data and checked there as backup --verify does: SQLite's
integrity check and the current generation's migrate --check (a backup
of a newer version than the current one is refused: upgrade first). A
corrupt, truncated or foreign file is refused, naming the member that
failed, with nothing changed.

Then the service stops, the database is replaced (the current one is
kept beside it, as db.sqlite3.replaced-TIME or a pg_dump in the
snapshots folder), the media and the secrets the backup holds replace
the current ones (which are kept beside them), the current generation's
migrations run on the restored database, and the service passes the
health gate and starts again. The config (bitpoll.toml) is not replaced.

Exit codes: 0 restored, 1 refused or failed, 2 usage error.`,
		Example: `  sudo bitpoll-install backup --verify /srv/backups/bitpoll.tar.gz
  sudo bitpoll-install restore /srv/backups/bitpoll.tar.gz`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRestore(cmd.Context(), g, o, args[0])
		},
	}
	o.configOptions.AddFlags(c)
	o.switchOptions.AddFlags(c)
	return c
}

func runRestore(ctx context.Context, g *globalOptions, o backupOptions, archive string) error {
	layout := store.Layout{Root: g.Root}
	if g.Root == "" && os.Geteuid() != 0 {
		return &usageError{errors.New("restore replaces the database and restarts the service: run it as root, or with --root DIR")}
	}
	st, plan, _, unlock, err := o.currentPlan(ctx, g, layout)
	if err != nil {
		return err
	}
	defer unlock()
	r, err := backup.Restore(ctx, st, plan, archive)
	if err != nil {
		return err
	}
	s := r.Switch
	if g.JSON {
		writeJSONLine(g.stdout, restoreRecord{"restore", archive, s.Generation.N, r.Drill.Generation, r.Drill.AppVersion,
			optional(s.Restored), list(s.Applied), s.Started, r.Drill.Polls, r.Drill.Votes, r.Took.Seconds()})
		return nil
	}
	w := g.stdout
	fmt.Fprintf(w, "restored %s (a backup of generation %d, %s %s, taken %s)\n", archive, r.Drill.Generation, r.Drill.App, r.Drill.AppVersion, r.Drill.Created.Format("2006-01-02 15:04:05 MST"))
	if s.Restored != "" {
		fmt.Fprintf(w, "the database it replaced is kept at %s\n", s.Restored)
	}
	if len(s.Applied) > 0 {
		fmt.Fprintf(w, "applied migrations: %s\n", strings.Join(s.Applied, ", "))
	}
	fmt.Fprintf(w, "polls: %d, votes: %d\n", r.Drill.Polls, r.Drill.Votes)
	state := "is current"
	if s.Started {
		state = "serves again"
	}
	fmt.Fprintf(w, "generation %d %s (%.1fs)\n", s.Generation.N, state, r.Took.Seconds())
	return nil
}

type restoreRecord struct {
	MessageType      string   `json:"message_type"` // "restore"
	Archive          string   `json:"archive"`
	Generation       int      `json:"generation"`
	BackupGeneration int      `json:"backup_generation"`
	BackupVersion    string   `json:"backup_app_version"`
	Replaced         *string  `json:"replaced"`
	Applied          []string `json:"applied"`
	Started          bool     `json:"started"`
	Polls            int      `json:"polls"`
	Votes            int      `json:"votes"`
	Seconds          float64  `json:"seconds"`
}
