package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/bitpoll-install/bitpoll-install/service"
	"github.com/bitpoll-install/bitpoll-install/store"
)

func newGenerationsCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "generations",
		Short: "List the generations: version, store path, size, migrations, current",
		Long: `List every generation, oldest first: its number, when it was made, the
app version, the interpreter and the store path; the space its store path
holds alone and the space it shares (hardlinks) with the caches and other
generations; the migrations its code ran against the database; and which
generation is current. Reads only; takes no lock.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runGenerations(cmd.Context(), g)
		},
	}
}

// generationInfo is one row of the listing.
type generationInfo struct {
	N          int
	Current    bool
	Created    string
	AppVersion string
	Python     string
	// InterpreterPath is the store path of the standalone interpreter
	// it runs on; empty for a host Python.
	InterpreterPath string
	StorePath       string
	OwnBytes        int64
	Shared          int64
	Migrations      map[string][]string
	Snapshot        string
}

type generationRecord struct {
	MessageType string        `json:"message_type"` // "generation"
	Generation  generationOut `json:"generation"`
}

// generationOut is generationInfo with null for what is not known.
type generationOut struct {
	N          int     `json:"generation"`
	Current    bool    `json:"current"`
	Created    string  `json:"created"`
	AppVersion *string `json:"app_version"`
	Python     *string `json:"python"`
	// InterpreterPath: the standalone interpreter's store path; null for
	// a host Python.
	InterpreterPath *string             `json:"interpreter_path"`
	StorePath       string              `json:"store_path"`
	OwnBytes        int64               `json:"own_bytes"`
	Shared          int64               `json:"shared_bytes"`
	Migrations      map[string][]string `json:"migrations"` // null: not recorded
	Snapshot        *string             `json:"snapshot"`
}

func runGenerations(_ context.Context, g *globalOptions) error {
	st, err := store.Open(store.Layout{Root: g.Root})
	if err != nil {
		return err
	}
	gens, err := st.Generations()
	if err != nil {
		return err
	}
	var infos []generationInfo
	for _, gen := range gens {
		m, err := st.ReadMeta(gen.N)
		if err != nil {
			return err
		}
		u, err := store.DiskUsage(gen.Target)
		if err != nil {
			return err
		}
		if m.AppVersion == "" {
			if man, err := service.ReadManifest(gen.Target); err == nil {
				m.AppVersion, m.Python = man.App.Version, man.Python
			}
		}
		python := m.Python
		if man, err := service.ReadManifest(gen.Target); err == nil {
			python = man.Python
		}
		infos = append(infos, generationInfo{N: gen.N, Current: gen.Current, Created: gen.Created.UTC().Format("2006-01-02 15:04:05Z"),
			AppVersion: m.AppVersion, Python: m.Python, StorePath: gen.Target, OwnBytes: u.Own, Shared: u.Shared,
			InterpreterPath: interpreterStorePath(st.Layout().StoreDir(), pythonPath(python)),
			Migrations:      m.Migrations, Snapshot: m.Snapshot})
	}
	if g.JSON {
		for _, i := range infos {
			writeJSONLine(g.stdout, generationRecord{"generation", generationOut{i.N, i.Current, i.Created,
				optional(i.AppVersion), optional(i.Python), optional(i.InterpreterPath), i.StorePath, i.OwnBytes, i.Shared, i.Migrations, optional(i.Snapshot)}})
		}
		return nil
	}
	if len(infos) == 0 {
		fmt.Fprintln(g.stdout, "no generations yet (bitpoll-install install makes the first)")
		return nil
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GEN\tCREATED\tVERSION\tPYTHON\tOWN\tSHARED\tMIGRATIONS\tSTORE PATH")
	for _, i := range infos {
		mark := " "
		if i.Current {
			mark = "*"
		}
		fmt.Fprintf(tw, "%d%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", i.N, mark, i.Created, i.AppVersion, pythonSummary(i.Python, i.InterpreterPath), humanBytes(i.OwnBytes), humanBytes(i.Shared), migrationSummary(i.Migrations), i.StorePath)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(g.stdout, "* current. PYTHON is the interpreter's version and path, or the store path of the standalone one the lock pins. OWN is held by this store path alone; SHARED is hardlinked with the caches or other generations.")
	return nil
}

// migrationSummary is the newest applied migration of each app that has
// any beyond Django's own, and the total.
func migrationSummary(m map[string][]string) string {
	if m == nil {
		return "(not recorded)"
	}
	n := 0
	var apps []string
	for app, names := range m {
		n += len(names)
		if len(names) > 0 {
			apps = append(apps, app+"."+names[len(names)-1])
		}
	}
	sort.Strings(apps)
	var own []string
	for _, a := range apps {
		if !strings.HasPrefix(a, "auth.") && !strings.HasPrefix(a, "contenttypes.") && !strings.HasPrefix(a, "sessions.") && !strings.HasPrefix(a, "admin.") {
			own = append(own, a)
		}
	}
	return fmt.Sprintf("%d applied; %s", n, strings.Join(own, " "))
}

func humanBytes(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}

// pythonPath is the interpreter's path: the last word of its identity
// ("cpython 3.13.5 x86_64 abiflags=\"\" /usr/bin/python3.13").
func pythonPath(id string) string {
	f := strings.Fields(id)
	if len(f) < 2 {
		return ""
	}
	return f[len(f)-1]
}

// pythonSummary is the PYTHON column: version and path, or the
// standalone interpreter's store path.
func pythonSummary(id, storePath string) string {
	f := strings.Fields(id)
	if len(f) < 2 {
		return "(not recorded)"
	}
	if storePath != "" {
		return f[1] + " " + filepath.Base(storePath)
	}
	return f[1] + " " + f[len(f)-1]
}
