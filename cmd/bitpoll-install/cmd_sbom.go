package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/bitpoll-install/bitpoll-install/atomicfile"
	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/pyspec/wheeltag"
	"github.com/bitpoll-install/bitpoll-install/sbom"
	"github.com/bitpoll-install/bitpoll-install/store"
)

type sbomOptions struct {
	Format string
	Output string
	Lock   string
	Target string
}

func (o *sbomOptions) AddFlags(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&o.Format, "format", "cyclonedx", "`FORMAT` of the SBOM: cyclonedx (CycloneDX 1.6 JSON) or spdx (SPDX 2.3 JSON)")
	f.StringVarP(&o.Output, "output", "o", "-", "write to `FILE` (- for standard output)")
	f.StringVar(&o.Lock, "lock", "", "describe the lock `FILE` instead of the current generation (no licences: a lock records none)")
	f.StringVar(&o.Target, "target", "", "with --lock, the `TARGET` whose files to list (cp313-x86_64); may be left out when the lock has only one")
}

func newSBOMCommand(g *globalOptions) *cobra.Command {
	var o sbomOptions
	c := &cobra.Command{
		Use:   "sbom",
		Short: "Write a software bill of materials of the current generation or of a lock",
		Long: `Write an SBOM, CycloneDX 1.6 or SPDX 2.3 JSON, of the current generation:
Bitpoll (its version and git commit and tree) and every Python package in
its venv, each with its purl (pkg:pypi/NAME@VERSION?file_name=WHEEL), the
sha256 of the wheel it was installed from, and its licence as the
package's METADATA in the venv declares it (License-Expression, else a
License field or classifier that names one SPDX licence, else the
License text as a name).

With --lock FILE it describes the lock instead, for one target, with the
download URLs and hashes the lock records; a lock records no licences, so
there are none.`,
		Example: `  bitpoll-install sbom -o bitpoll.cdx.json
  bitpoll-install sbom --format spdx -o bitpoll.spdx.json
  bitpoll-install sbom --lock bitpoll.lock --target cp313-x86_64`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSBOM(cmd.Context(), g, o)
		},
	}
	o.AddFlags(c)
	return c
}

func runSBOM(_ context.Context, g *globalOptions, o sbomOptions) error {
	var write func(sbom.BOM) ([]byte, error)
	switch o.Format {
	case "cyclonedx":
		write = sbom.CycloneDX
	case "spdx":
		write = sbom.SPDX
	default:
		return &usageError{fmt.Errorf("--format %q is not a known format: use cyclonedx or spdx", o.Format)}
	}
	if o.Target != "" && o.Lock == "" {
		return &usageError{fmt.Errorf("--target goes with --lock: the current generation has one target already")}
	}
	var b sbom.BOM
	var err error
	if o.Lock != "" {
		b, err = lockBOM(o.Lock, o.Target)
	} else {
		b, err = generationBOM(store.Layout{Root: g.Root})
	}
	if err != nil {
		return err
	}
	b.Created = time.Now()
	b.Tool = "bitpoll-install " + version
	data, err := write(b)
	if err != nil {
		return err
	}
	// With --json, stdout holds records only: the document goes into one.
	record := map[string]any{"message_type": "sbom", "format": o.Format, "source": b.Source, "packages": len(b.Packages),
		"file": nil, "document": nil}
	if o.Output == "-" {
		if !g.JSON {
			_, err = g.stdout.Write(data)
			return err
		}
		record["document"] = json.RawMessage(data)
		writeJSONLine(g.stdout, record)
		return nil
	}
	if err := atomicfile.Write(o.Output, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", o.Output, err)
	}
	if g.JSON {
		record["file"] = o.Output
		writeJSONLine(g.stdout, record)
	} else {
		fmt.Fprintf(g.stderr, "wrote %s (%s, %d packages) of %s\n", o.Output, o.Format, len(b.Packages), b.Source)
	}
	return nil
}

// storeManifest is what a store path records of what it was built from
// (install.Manifest).
type storeManifest struct {
	App    lockfile.App
	Target string
	Pkgs   []struct{ Name, Version, File, SHA256 string }
}

// generationBOM lists the current generation's packages, with licences
// from the METADATA of its venv's dist-info folders.
func generationBOM(l store.Layout) (sbom.BOM, error) {
	st, err := store.Open(l)
	if err != nil {
		return sbom.BOM{}, err
	}
	gen, ok, err := st.CurrentGeneration()
	if err != nil {
		return sbom.BOM{}, err
	}
	if !ok {
		return sbom.BOM{}, fmt.Errorf("sbom: there is no current generation at %s: install first, or describe a lock with --lock FILE", l.Current())
	}
	manPath := filepath.Join(gen.Target, install.Manifest)
	data, err := os.ReadFile(manPath)
	var m storeManifest
	if err == nil {
		err = json.Unmarshal(data, &m)
	}
	if err != nil {
		return sbom.BOM{}, fmt.Errorf("sbom: read %s: %w", manPath, err)
	}
	metas, _ := filepath.Glob(filepath.Join(gen.Target, install.VenvDir, "lib", "python3*", "site-packages", "*.dist-info", "METADATA"))
	licences := map[string]sbom.Metadata{}
	for _, p := range metas {
		data, err := os.ReadFile(p)
		if err != nil {
			return sbom.BOM{}, fmt.Errorf("sbom: %w", err)
		}
		md, err := sbom.ReadMetadata(data)
		if err != nil {
			return sbom.BOM{}, fmt.Errorf("sbom: read %s: %w", p, err)
		}
		licences[sbom.Normalize(md.Name)] = md
	}
	b := sbom.BOM{
		App:    sbom.Component{Name: m.App.Name, Version: m.App.Version, URL: m.App.URL, Commit: m.App.Commit, Tree: m.App.Tree},
		Source: fmt.Sprintf("generation %d (%s, %s)", gen.N, gen.Target, m.Target),
	}
	seen := map[string]bool{}
	for _, p := range m.Pkgs {
		c := sbom.Component{Name: p.Name, Version: p.Version, File: p.File, SHA256: p.SHA256}
		if md, ok := licences[sbom.Normalize(p.Name)]; ok {
			c.License = sbom.LicenseOf(md)
		}
		seen[sbom.Normalize(p.Name)] = true
		b.Packages = append(b.Packages, c)
	}
	// Anything else in the venv (none, unless pip or the like was put
	// there) is listed too, without a file hash.
	for name, md := range licences {
		if !seen[name] {
			b.Packages = append(b.Packages, sbom.Component{Name: md.Name, Version: md.Version, License: sbom.LicenseOf(md)})
		}
	}
	return b, nil
}

// lockBOM lists the packages that the lock installs on target.
func lockBOM(path, target string) (sbom.BOM, error) {
	l, err := lockfile.ReadFile(path)
	if err != nil {
		return sbom.BOM{}, err
	}
	if target == "" {
		if len(l.Targets) != 1 {
			return sbom.BOM{}, &usageError{fmt.Errorf("--target is required: %s has several targets, one of %v", path, l.Targets)}
		}
		target = l.Targets[0]
	}
	glibc, err := wheeltag.ParseGlibc(l.Glibc)
	if err != nil {
		return sbom.BOM{}, fmt.Errorf("%s: glibc: %w", path, err)
	}
	t, err := wheeltag.ParseTarget(target, glibc)
	if err != nil {
		return sbom.BOM{}, &usageError{fmt.Errorf("--target: %w", err)}
	}
	found := false
	for _, name := range l.Targets {
		found = found || name == t.String()
	}
	if !found {
		return sbom.BOM{}, &usageError{fmt.Errorf("--target %s is not in %s: it covers %v", t, path, l.Targets)}
	}
	sel, err := l.ForTarget(t)
	if err != nil {
		return sbom.BOM{}, fmt.Errorf("%s: %w", path, err)
	}
	b := sbom.BOM{
		App:    sbom.Component{Name: l.App.Name, Version: l.App.Version, URL: l.App.URL, Commit: l.App.Commit, Tree: l.App.Tree},
		Source: fmt.Sprintf("lock %s, target %s", path, t),
	}
	for _, s := range sel {
		b.Packages = append(b.Packages, sbom.Component{Name: s.Package.Name, Version: s.Package.Version, File: s.File.Name, SHA256: s.File.SHA256, URL: s.File.URL})
	}
	return b, nil
}
