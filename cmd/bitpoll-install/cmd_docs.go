package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newDocsCommand generates man pages from the commands themselves, so the
// manual can never drift from the flags. Shell completions come from
// cobra's built-in "completion" command.
func newDocsCommand(g *globalOptions, root *cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:    "docs",
		Short:  "Generate documentation",
		Hidden: false,
	}
	man := &cobra.Command{
		Use:     "man DIR",
		Short:   "Write a man page for every command into DIR",
		Example: "  bitpoll-install docs man /usr/local/share/man/man1",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return fmt.Errorf("write man pages: %w", err)
			}
			root.DisableAutoGenTag = true // keeps the pages byte-stable
			hdr := &doc.GenManHeader{Title: "BITPOLL-INSTALL", Section: "1", Source: "bitpoll-install " + version, Manual: "bitpoll-install manual"}
			if err := doc.GenManTree(root, hdr, args[0]); err != nil {
				return fmt.Errorf("write man pages: %w", err)
			}
			if err := addManSections(root, args[0]); err != nil {
				return fmt.Errorf("write man pages: %w", err)
			}
			if g.JSON {
				pages, _ := filepath.Glob(filepath.Join(args[0], "*.1"))
				writeJSONLine(g.stdout, docsRecord{"docs", args[0], len(pages)})
			} else {
				fmt.Fprintf(g.stderr, "wrote man pages to %s\n", args[0])
			}
			return nil
		},
	}
	c.AddCommand(man)
	return c
}

type docsRecord struct {
	MessageType string `json:"message_type"` // "docs"
	Dir         string `json:"dir"`
	Pages       int    `json:"pages"`
}

// manFiles are the paths every command reads or writes, for the FILES
// section of each page.
var manFiles = [][2]string{
	{"/etc/bitpoll/bitpoll.toml", "the admin's config: port, hosts, database, workers, settings (a commented default is written when absent)"},
	{"/etc/bitpoll/settings.json", "the settings the app reads, written from the config"},
	{"/etc/bitpoll/secrets/", "secret_key, field_encryption_key and passwords, root-only; generated once, never overwritten"},
	{"/opt/bitpoll/store/", "the immutable store paths: app, venv, static files, each verified against the lock"},
	{"/opt/bitpoll/generations/", "one symlink and one record (N.json) per generation"},
	{"/opt/bitpoll/current", "the generation in service, switched by an atomic rename"},
	{"/opt/bitpoll/switch-in-progress.json", "a switch under way; a rerun after a crash finishes it"},
	{"/var/lib/bitpoll/", "the mutable data: the SQLite database, media, migration stamps, snapshots"},
	{"/var/cache/bitpoll-install/", "downloads, unpacked wheels and bytecode, by hash; gc frees what nothing uses"},
	{"/etc/systemd/system/bitpoll.socket, bitpoll@.service, bitpoll-migrate@.service", "the units install writes"},
	{"bitpoll.lock", "the lock: lock writes it, --lock reads it (install, upgrade, run and export use the one built in when it is left out)"},
}

// addManSections adds EXIT STATUS and FILES to each command's page,
// before SEE ALSO.
func addManSections(root *cobra.Command, dir string) error {
	var walk func(c *cobra.Command) error
	walk = func(c *cobra.Command) error {
		if !c.IsAvailableCommand() && c != root {
			return nil
		}
		path := filepath.Join(dir, strings.ReplaceAll(c.CommandPath(), " ", "-")+".1")
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var b strings.Builder
		b.WriteString(".SH EXIT STATUS\n")
		codes := [][2]string{
			{"0", "success"},
			{"1", "failure; the message says what went wrong and what to do"},
			{"2", "usage error: a bad flag or argument"},
		}
		if c.Name() == "doctor" {
			codes[1][1] = "at least one check failed; each printed its fix"
		}
		if c == root || c.Name() == "audit" {
			codes = append(codes, [2]string{"3", "audit found known vulnerabilities"})
		}
		codes = append(codes, [2]string{"130", "interrupted (Ctrl-C or SIGTERM); the message says whether anything was switched"})
		for _, code := range codes {
			fmt.Fprintf(&b, ".TP\n.B %s\n%s\n", code[0], code[1])
		}
		b.WriteString(".SH FILES\nWith \\fB--root\\fP \\fIDIR\\fP, every path below moves under \\fIDIR\\fP.\n")
		for _, f := range manFiles {
			fmt.Fprintf(&b, ".TP\n.I %s\n%s\n", f[0], f[1])
		}
		page := string(data)
		if i := strings.Index(page, ".SH SEE ALSO"); i >= 0 {
			page = page[:i] + b.String() + page[i:]
		} else {
			page += b.String()
		}
		if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
			return err
		}
		for _, sub := range c.Commands() {
			if err := walk(sub); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root)
}
