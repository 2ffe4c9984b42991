package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/service"
	"github.com/bitpoll-install/bitpoll-install/standalone"
	"github.com/bitpoll-install/bitpoll-install/store"
)

type gcOptions struct {
	switchOptions
	Keep   int
	DryRun bool
}

func newGCCommand(g *globalOptions) *cobra.Command {
	var o gcOptions
	c := &cobra.Command{
		Use:   "gc",
		Short: "Free the generations, store paths, caches and snapshots nothing keeps",
		Long: `Remove all but the newest --keep generations, then free what no kept
generation references: store paths, unpacked wheels, compiled bytecode,
downloaded wheels, and the database snapshots of removed generations.
The current generation and the one before it are always kept, so that a
rollback stays possible. Prints the bytes freed: a file still linked
from something kept is not counted.`,
		Example: `  sudo bitpoll-install gc --dry-run
  sudo bitpoll-install gc --keep 2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runGC(cmd.Context(), g, o)
		},
	}
	c.Flags().IntVar(&o.Keep, "keep", 3, "how many of the newest generations to keep (current and previous are kept anyway)")
	c.Flags().BoolVar(&o.DryRun, "dry-run", false, "list what would be freed, free nothing")
	c.Flags().BoolVar(&o.NoWait, "no-wait", false, "fail at once when another bitpoll-install holds the store lock")
	return c
}

func runGC(ctx context.Context, g *globalOptions, o gcOptions) error {
	if o.Keep < 0 {
		return &usageError{errors.New("--keep takes a number of generations, 0 or more")}
	}
	layout := store.Layout{Root: g.Root}
	st, unlock, err := o.lockStore(ctx, g, layout)
	if err != nil {
		return err
	}
	defer unlock()
	var protect []int
	if p, ok, err := st.ReadPending(); err != nil {
		return err
	} else if ok {
		protect = append(protect, p.From, p.To)
	}
	cache := layout.CacheDir()
	r, err := st.GC(store.GCOptions{
		Keep: o.Keep, Protect: protect, DryRun: o.DryRun,
		Refs:   storeRefs,
		Uses:   func(p string) ([]string, error) { return storeUses(layout.StoreDir(), p) },
		Caches: install.CacheEntryDirs(cache),
	})
	if err != nil {
		return err
	}
	if g.JSON {
		writeJSONLine(g.stdout, gcRecord{"gc", o.DryRun, list(r.Generations), list(r.StorePaths), list(r.Files), r.Bytes})
		return nil
	}
	verb := "removed"
	if o.DryRun {
		verb = "would remove"
	}
	for _, n := range r.Generations {
		fmt.Fprintf(g.stdout, "%s generation %d\n", verb, n)
	}
	for _, p := range r.StorePaths {
		fmt.Fprintf(g.stdout, "%s %s\n", verb, p)
	}
	fmt.Fprintf(g.stdout, "%s %d cache entries and snapshots\n", verb, len(r.Files))
	if o.DryRun {
		fmt.Fprintf(g.stdout, "would free %s\n", humanBytes(r.Bytes))
	} else {
		fmt.Fprintf(g.stdout, "freed %s\n", humanBytes(r.Bytes))
	}
	return nil
}

type gcRecord struct {
	MessageType string   `json:"message_type"` // "gc"
	DryRun      bool     `json:"dry_run"`
	Generations []int    `json:"generations"`
	StorePaths  []string `json:"store_paths"`
	Files       []string `json:"files"`
	BytesFreed  int64    `json:"bytes_freed"`
}

// storeRefs are the wheel hashes a store path was built from: the keys
// of its cache entries.
func storeRefs(path string) ([]string, error) {
	if isInterpreterPath(path) {
		return nil, nil // a standalone interpreter, kept for a generation: no wheels
	}
	m, err := service.ReadManifest(path)
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, p := range m.Pkgs {
		keys = append(keys, p.SHA256)
	}
	return keys, nil
}

// storeUses is the store path of the standalone interpreter a store path
// runs on, if its interpreter lies in the store.
func storeUses(storeDir, path string) ([]string, error) {
	m, err := service.ReadManifest(path)
	if err != nil {
		return nil, err
	}
	if p := interpreterStorePath(storeDir, m.PythonPath()); p != "" {
		return []string{p}, nil
	}
	return nil, nil
}

// interpreterStorePath is the store path that holds python, or "" when
// python lies outside the store.
func interpreterStorePath(storeDir, python string) string {
	if python == "" {
		return ""
	}
	rel, err := filepath.Rel(storeDir, python)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") || filepath.IsAbs(rel) {
		return ""
	}
	first, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
	return filepath.Join(storeDir, first)
}

// isInterpreterPath reports whether a store path holds a standalone
// interpreter rather than an app: it has no manifest, and its name and
// top directory are the interpreter's.
func isInterpreterPath(path string) bool {
	if !strings.Contains(filepath.Base(path), "-"+standalone.StoreName+"-") {
		return false
	}
	if _, err := os.Stat(filepath.Join(path, install.Manifest)); err == nil {
		return false
	}
	info, err := os.Stat(filepath.Join(path, standalone.TopDir))
	return err == nil && info.IsDir()
}
