package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/resolve/index"
)

// auditOptions are the flags of "audit".
type auditOptions struct {
	Lock       string
	JSONAPIURL string
}

func (o *auditOptions) AddFlags(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&o.Lock, "lock", "bitpoll.lock", "the lock `FILE` to audit")
	f.StringVar(&o.JSONAPIURL, "json-api-url", "https://pypi.org/pypi/", "the PyPI JSON API `URL` that reports vulnerabilities")
}

func newAuditCommand(g *globalOptions) *cobra.Command {
	var o auditOptions
	c := &cobra.Command{
		Use:   "audit",
		Short: "List known vulnerabilities of every locked version",
		Long: `List the known vulnerabilities of every package version in the lock, as
PyPI's JSON API reports them (its "vulnerabilities" field, from the OSV
database).

Exits 0 when there are none, 3 when there are any, and 1 when some packages
could not be audited, so that admins can run it in their own CI.`,
		Example: `  bitpoll-install audit --lock bitpoll.lock
  bitpoll-install audit --json | jq 'select(.message_type == "vulnerability")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAudit(cmd.Context(), g, o)
		},
	}
	o.AddFlags(c)
	return c
}

// finding is one vulnerability of one locked package.
type finding struct {
	Package string
	Version string
	Vuln    index.Vuln
}

func runAudit(ctx context.Context, g *globalOptions, o auditOptions) error {
	l, err := lockfile.ReadFile(o.Lock)
	if err != nil {
		return err
	}
	idx := g.indexClient(index.Options{JSONAPIURL: o.JSONAPIURL, UserAgent: "bitpoll-install/" + version})
	findings, unaudited, err := audit(ctx, idx, l)
	if err != nil {
		return err
	}
	printFindings(g, findings)
	if g.JSON {
		writeJSONLine(g.stdout, auditRecord{"audit", o.Lock, len(l.Packages), len(findings), list(unaudited)})
	}
	switch {
	case len(unaudited) > 0:
		sort.Strings(unaudited)
		return fmt.Errorf("could not audit %d of %d packages: %s; retry, or use --json-api-url with a mirror of PyPI's JSON API",
			len(unaudited), len(l.Packages), strings.Join(unaudited, "; "))
	case len(findings) > 0:
		return &exitError{code: exitFindings, msg: fmt.Sprintf("%s in %s: update the affected pins (see fixed_in)", plural(len(findings), "known vulnerability", "known vulnerabilities"), o.Lock)}
	}
	if !g.JSON {
		fmt.Fprintf(g.stdout, "no known vulnerabilities in %d packages\n", len(l.Packages))
	}
	return nil
}

// audit asks the index about every package of l, in parallel.
func audit(ctx context.Context, idx *index.Client, l *lockfile.Lock) ([]finding, []string, error) {
	var (
		mu        sync.Mutex
		findings  []finding
		unaudited []string
	)
	eg, ctx := errgroup.WithContext(ctx)
	for _, p := range l.Packages {
		eg.Go(func() error {
			vulns, err := idx.Vulnerabilities(ctx, p.Name, p.Version)
			mu.Lock()
			defer mu.Unlock()
			if errors.Is(err, index.ErrNoVulnerabilityData) {
				// The index's own words: which URL answered what.
				why := strings.TrimPrefix(err.Error(), "audit "+p.Name+" "+p.Version+": ")
				why = strings.TrimSuffix(why, ": "+index.ErrNoVulnerabilityData.Error())
				unaudited = append(unaudited, p.Name+" "+p.Version+" ("+why+")")
				return nil
			}
			if err != nil {
				return fmt.Errorf("audit %s %s: %w", p.Name, p.Version, err)
			}
			for _, v := range vulns {
				if v.Withdrawn != "" {
					continue
				}
				findings = append(findings, finding{Package: p.Name, Version: p.Version, Vuln: v})
			}
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, nil, err
	}
	sort.Slice(findings, func(i, j int) bool {
		if findings[i].Package != findings[j].Package {
			return findings[i].Package < findings[j].Package
		}
		return findings[i].Vuln.ID < findings[j].Vuln.ID
	})
	sort.Strings(unaudited)
	return findings, unaudited, nil
}

func printFindings(g *globalOptions, findings []finding) {
	for _, f := range findings {
		if g.JSON {
			writeJSONLine(g.stdout, vulnerabilityRecord{"vulnerability", f.Package, f.Version,
				f.Vuln.ID, list(f.Vuln.Aliases), list(f.Vuln.FixedIn), optional(f.Vuln.Link), optional(f.Vuln.Summary)})
			continue
		}
		fixed := "no fix released"
		if len(f.Vuln.FixedIn) > 0 {
			fixed = "fixed in " + strings.Join(f.Vuln.FixedIn, ", ")
		}
		id := f.Vuln.ID
		if len(f.Vuln.Aliases) > 0 {
			id += " (" + strings.Join(f.Vuln.Aliases, ", ") + ")"
		}
		summary := f.Vuln.Summary
		if summary == "" {
			summary = firstLine(f.Vuln.Details)
		}
		fmt.Fprintf(g.stdout, "%s %s: %s: %s; %s\n", f.Package, f.Version, id, summary, fixed)
	}
}

type vulnerabilityRecord struct {
	MessageType string   `json:"message_type"` // "vulnerability"
	Package     string   `json:"package"`
	Version     string   `json:"version"`
	ID          string   `json:"id"`
	Aliases     []string `json:"aliases"`
	FixedIn     []string `json:"fixed_in"`
	Link        *string  `json:"link"`
	Summary     *string  `json:"summary"`
}

// auditRecord ends audit's output, before the error record of exit 1 or 3.
type auditRecord struct {
	MessageType     string   `json:"message_type"` // "audit"
	Lock            string   `json:"lock"`
	Packages        int      `json:"packages"`
	Vulnerabilities int      `json:"vulnerabilities"`
	Unaudited       []string `json:"unaudited"` // "name version (why)"
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

// plural is "1 thing" or "n things".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
