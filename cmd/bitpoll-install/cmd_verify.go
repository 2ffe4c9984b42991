package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/bitpoll-install/bitpoll-install/atomicfile"
	"github.com/bitpoll-install/bitpoll-install/progress"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// verifyPositionFile, in the state directory, is where the next sampled
// verify starts.
const verifyPositionFile = "verify-position.json"

type verifyOptions struct {
	Sample float64
	NoWait bool
}

func (o *verifyOptions) AddFlags(c *cobra.Command) {
	f := c.Flags()
	f.Float64Var(&o.Sample, "sample", 100, "rehash the content of only this `PERCENT` of the files (by count and by bytes), continuing where the last sampled run stopped")
	f.BoolVar(&o.NoWait, "no-wait", false, "fail at once when another bitpoll-install holds the store lock, instead of waiting for it")
}

func newVerifyCommand(g *globalOptions) *cobra.Command {
	var o verifyOptions
	c := &cobra.Command{
		Use:   "verify",
		Short: "Rehash the store against the records written when each path was sealed",
		Long: `Check every store path against the record written when it was sealed
(` + store.SealFile + `): each file's sha256 and size, each entry's type
and mode, each symlink's target. Every changed, missing or added entry is
named.

--sample PERCENT rehashes only that share of the files' content, starting
where the last sampled run stopped (the position is kept in the state
directory), so that a daily timer stays cheap and 100/PERCENT runs cover
every file. Types, modes, sizes, symlinks and missing or added entries are
checked in full on every run: that costs only a walk.

A store path built before seal records existed is reported as unsealed.

Exits 0 when everything matches, 3 when anything differs, and 1 when the
store could not be read.`,
		Example: `  sudo bitpoll-install verify
  sudo bitpoll-install verify --sample 5      # from a daily timer
  bitpoll-install verify --json | jq 'select(.message_type == "finding")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVerify(cmd.Context(), g, o)
		},
	}
	o.AddFlags(c)
	return c
}

// verifyPosition is the state kept between sampled runs.
type verifyPosition struct {
	Next    string    `json:"next"`
	Updated time.Time `json:"updated"`
}

func runVerify(ctx context.Context, g *globalOptions, o verifyOptions) error {
	if o.Sample <= 0 || o.Sample > 100 {
		return &usageError{fmt.Errorf("--sample %v is not a percentage: give more than 0 and at most 100", o.Sample)}
	}
	layout := store.Layout{Root: g.Root}
	if _, err := os.Stat(layout.StoreDir()); err != nil {
		return fmt.Errorf("verify: no store at %s: %w (install first, or give --root DIR of the system to check)", layout.StoreDir(), err)
	}
	sw := switchOptions{NoWait: o.NoWait}
	st, unlock, err := sw.lockStore(ctx, g, layout)
	if err != nil {
		return err
	}
	defer unlock()
	posPath := filepath.Join(layout.StateDir(), verifyPositionFile)
	var pos verifyPosition
	if o.Sample < 100 {
		if pos, err = readVerifyPosition(posPath); err != nil {
			return err
		}
	}
	start := time.Now()
	r, err := st.Check(ctx, store.CheckOptions{Sample: o.Sample, Start: pos.Next})
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	if o.Sample < 100 {
		if err := os.MkdirAll(layout.StateDir(), 0o755); err != nil {
			return fmt.Errorf("verify: keep the sample position: %w", err)
		}
		data, _ := json.Marshal(verifyPosition{Next: r.Next, Updated: time.Now().UTC()})
		if err := atomicfile.Write(posPath, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("verify: keep the sample position: %w", err)
		}
	}
	rate := float64(r.HashedBytes) / 1e6 / max(elapsed.Seconds(), 1e-9)
	for _, f := range r.Findings {
		if g.JSON {
			writeJSONLine(g.stdout, map[string]any{"message_type": "finding", "store_path": f.StorePath, "path": f.Path,
				"kind": f.Kind, "want": optional(f.Want), "got": optional(f.Got), "detail": optional(f.Detail)})
		} else {
			fmt.Fprintln(g.stdout, f.String())
		}
	}
	if g.JSON {
		writeJSONLine(g.stdout, map[string]any{"message_type": "verify_summary", "store_paths": r.StorePaths,
			"files": r.Files, "bytes": r.Bytes, "hashed_files": r.HashedFiles, "hashed_bytes": r.HashedBytes,
			"sample_percent": r.Sample, "next": optional(r.Next), "findings": len(r.Findings), "seconds": elapsed.Seconds(), "mb_per_s": rate})
	} else {
		msg := fmt.Sprintf("checked %s: %d files, %s; rehashed %d files, %s, at %.0f MB/s",
			plural(r.StorePaths, "store path", "store paths"), r.Files, progress.FormatBytes(r.Bytes), r.HashedFiles, progress.FormatBytes(r.HashedBytes), rate)
		if o.Sample < 100 {
			msg += fmt.Sprintf(" (a %v%% sample; the next run continues from there)", o.Sample)
		}
		fmt.Fprintln(g.stdout, msg)
	}
	if len(r.Findings) > 0 {
		return &exitError{code: exitFindings, msg: fmt.Sprintf("%s in %s: the store is not as it was sealed (see above); find out what changed it, and rebuild a damaged store path: remove it once no kept generation uses it, then install again",
			plural(len(r.Findings), "finding", "findings"), layout.StoreDir())}
	}
	return nil
}

func readVerifyPosition(path string) (verifyPosition, error) {
	var pos verifyPosition
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return pos, nil
	}
	if err == nil {
		err = json.Unmarshal(data, &pos)
	}
	if err != nil {
		return pos, fmt.Errorf("verify: read the sample position %s: %w (remove it to start from the beginning)", path, err)
	}
	return pos, nil
}
