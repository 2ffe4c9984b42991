package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bitpoll-install/bitpoll-install/progress"
	"github.com/bitpoll-install/bitpoll-install/status"
	"github.com/bitpoll-install/bitpoll-install/store"
)

func newStatusCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the current generation, the service, the URL, migrations, disk use and the last backup",
		Long: `Show the installation at a glance: the current generation with its app
version, interpreter and store path; what systemd says of bitpoll.socket
and the current bitpoll@N.service (active, enabled); the URL and what the
socket listens on; the migrations recorded when the generation's
migrations last ran; the disk used by the store, the download cache, the
data (database, media) and the snapshots; and the last backup's age, as
backup recorded it. Reads only; takes no lock. doctor says whether it is
all healthy.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStatus(cmd.Context(), g)
		},
	}
}

type statusRecord struct {
	MessageType       string             `json:"message_type"` // "status"
	Generation        *int               `json:"generation"`
	AppVersion        *string            `json:"app_version"`
	Python            *string            `json:"python"`
	StorePath         *string            `json:"store_path"`
	Created           *string            `json:"created"`
	Units             []statusUnit       `json:"units"`
	UnitsNote         *string            `json:"units_note"`
	URL               *string            `json:"url"`
	Listen            []string           `json:"listen"`
	MigrationsApplied *int               `json:"migrations_applied"`
	LastMigrations    []string           `json:"last_migrations"`
	MigratedAt        *string            `json:"migrated_at"`
	Disk              statusDisk         `json:"disk"`
	LastBackup        *statusBackupField `json:"last_backup"`
}

type statusUnit struct {
	Unit    string  `json:"unit"`
	Active  string  `json:"active"`
	Sub     string  `json:"sub"`
	Enabled *string `json:"enabled"`
}

type statusDisk struct {
	Store     int64 `json:"store"`
	Cache     int64 `json:"cache"`
	Data      int64 `json:"data"`
	Snapshots int64 `json:"snapshots"`
}

type statusBackupField struct {
	Path       string  `json:"path"`
	Created    string  `json:"created"`
	AgeSeconds float64 `json:"age_seconds"`
	Exists     bool    `json:"exists"`
	Secrets    *bool   `json:"secrets"`
}

func runStatus(ctx context.Context, g *globalOptions) error {
	r, err := status.Gather(ctx, status.Options{Layout: store.Layout{Root: g.Root}, Systemd: g.Root == ""})
	if err != nil {
		return err
	}
	if g.JSON {
		writeJSONLine(g.stdout, newStatusRecord(r))
		return nil
	}
	w := g.stdout
	if r.Generation == 0 {
		fmt.Fprintln(w, "generation  none is current (bitpoll-install install makes the first)")
	} else {
		fmt.Fprintf(w, "generation  %d, made %s: %s %s on %s\n", r.Generation, stamp(r.Created), orNone(r.AppName), orNone(r.AppVersion), pythonName(r.Python))
		fmt.Fprintf(w, "store path  %s\n", r.StorePath)
	}
	if len(r.Units) == 0 {
		fmt.Fprintf(w, "units       %s\n", r.UnitsNote)
	}
	for _, u := range r.Units {
		fmt.Fprintf(w, "%-11s %s %s (%s), %s\n", unitLabel(u.Name), u.Name, u.Active, u.Sub, orNone(u.File))
	}
	fmt.Fprintf(w, "url         %s, listening on %s\n", orNone(r.URL), orNone(strings.Join(r.Listen, ", ")))
	switch {
	case r.MigrationsApplied < 0:
		fmt.Fprintln(w, "migrations  (not recorded)")
	default:
		at := ""
		if r.MigratedAt != nil {
			at = ", as of " + stamp(*r.MigratedAt)
		}
		fmt.Fprintf(w, "migrations  %d applied, the last: %s%s\n", r.MigrationsApplied, orNone(strings.Join(r.LastMigrations, " ")), at)
	}
	fmt.Fprintf(w, "disk        store %s, cache %s, data %s, snapshots %s\n", progress.FormatBytes(r.Disk.Store), progress.FormatBytes(r.Disk.Cache), progress.FormatBytes(r.Disk.Data), progress.FormatBytes(r.Disk.Snapshots))
	if b := r.Backup; b == nil {
		fmt.Fprintln(w, "backup      none recorded (bitpoll-install backup makes one)")
	} else {
		gone := ""
		if !b.Exists {
			gone = " (no longer there)"
		}
		fmt.Fprintf(w, "backup      %s ago, %s: %s%s\n", age(b.Age), stamp(b.Created), b.Path, gone)
	}
	return nil
}

func newStatusRecord(r *status.Report) statusRecord {
	rec := statusRecord{MessageType: "status", Units: []statusUnit{}, UnitsNote: optional(r.UnitsNote), URL: optional(r.URL),
		Listen: list(r.Listen), LastMigrations: list(r.LastMigrations),
		Disk: statusDisk{r.Disk.Store, r.Disk.Cache, r.Disk.Data, r.Disk.Snapshots}}
	if r.Generation > 0 {
		n, created := r.Generation, r.Created.UTC().Format(time.RFC3339)
		rec.Generation, rec.AppVersion, rec.Python, rec.StorePath, rec.Created = &n, optional(r.AppVersion), optional(r.Python), optional(r.StorePath), &created
	}
	for _, u := range r.Units {
		rec.Units = append(rec.Units, statusUnit{u.Name, u.Active, u.Sub, optional(u.File)})
	}
	if r.MigrationsApplied >= 0 {
		n := r.MigrationsApplied
		rec.MigrationsApplied = &n
	}
	if r.MigratedAt != nil {
		rec.MigratedAt = optional(r.MigratedAt.UTC().Format(time.RFC3339))
	}
	if b := r.Backup; b != nil {
		rec.LastBackup = &statusBackupField{b.Path, b.Created.UTC().Format(time.RFC3339), b.Age.Seconds(), b.Exists, b.Secrets}
	}
	return rec
}

func unitLabel(name string) string {
	if strings.HasSuffix(name, ".socket") {
		return "socket"
	}
	return "service"
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// pythonName is "CPython 3.13.5" from an interpreter ID.
func pythonName(id string) string {
	f := strings.Fields(id)
	if len(f) < 2 {
		return "(interpreter not recorded)"
	}
	return "CPython " + f[1]
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

// age is a duration as people say it: "3 min", "5 h 2 min", "4 days".
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "in the future (check the clock)"
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}
