package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bitpoll-install/bitpoll-install/progress"
	"github.com/bitpoll-install/bitpoll-install/resolve/index"
	"github.com/bitpoll-install/bitpoll-install/store"
	"github.com/bitpoll-install/bitpoll-install/suggest"
)

// globalOptions are the flags every command takes.
type globalOptions struct {
	Root string // --root: prefix for every system path
	JSON bool   // --json: machine-readable output

	stdout, stderr io.Writer
	// newIndex builds index clients; nil means index.New. Tests replace it
	// to prove that a command stays offline, or to trust a test server.
	newIndex func(index.Options) *index.Client
	// httpClient fetches standalone interpreters and their download
	// lists; nil means the default client. Tests set it to trust a test
	// server.
	httpClient *http.Client
	// hooks sees the phases of a build and of a generation switch; the
	// crash tests kill the process there.
	hooks store.Hooks
	// currentBefore is where each current link pointed when the command
	// started, by path, to tell after an interrupt whether it moved.
	currentBefore map[string]string
	// clock times the phases hooks reports, for the phase lines and the
	// summary.
	clock        *phaseClock
	progressOnce sync.Once
	progressRep  progress.Reporter
}

func (g *globalOptions) indexClient(o index.Options) *index.Client {
	if g.newIndex != nil {
		return g.newIndex(o)
	}
	return index.New(o)
}

const rootLong = `bitpoll-install deploys Bitpoll, the Django app for polls and meeting
scheduling, the way Nix would: bitpoll.lock pins the app source and every
Python wheel by hash, and every install is verified against it.

Exit codes:
  0  success
  1  failure (the message says what went wrong and what to do)
  2  usage error (a bad flag or argument)
  3  findings: audit found known vulnerabilities, or verify found the
     store changed
  130  interrupted (Ctrl-C or SIGTERM); the message says whether anything
       was switched`

func newRootCommand(g *globalOptions) *cobra.Command {
	root := &cobra.Command{
		Use:           "bitpoll-install",
		Short:         "Lock, install and run Bitpoll reproducibly",
		Long:          rootLong,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRun: func(*cobra.Command, []string) {
			g.currentBefore = map[string]string{}
			for _, c := range g.currentLinks() {
				g.currentBefore[c.path] = c.target
			}
			g.clock = newPhaseClock(g)
			next := g.hooks.At
			g.hooks.At = func(p store.Phase, path string) {
				g.clock.at(p)
				if next != nil {
					next(p, path)
				}
			}
		},
	}
	root.PersistentFlags().StringVar(&g.Root, "root", "", "prefix every system path (/opt/bitpoll, /etc/bitpoll, /var/...) with `DIR`")
	root.PersistentFlags().BoolVar(&g.JSON, "json", false, "print JSON lines on standard output instead of text (see output.schema.json)")
	showVersion := root.Flags().Bool("version", false, "print the version")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &usageError{flagError(c, err)} })
	root.AddCommand(
		newLockCommand(g),
		newInstallCommand(g),
		newUpgradeCommand(g),
		newRollbackCommand(g),
		newGenerationsCommand(g),
		newGCCommand(g),
		newRunCommand(g),
		newDevCommand(g),
		newExportCommand(g),
		newAuditCommand(g),
		newVerifyCommand(g),
		newSBOMCommand(g),
		newUnitCommand(g),
		newNginxCommand(g),
		newManageCommand(g),
		newDocsCommand(g, root),
	)
	root.SetErr(g.stderr)
	// Added now rather than at Execute, so that wrapArgs reaches it and the
	// tree that tests and the docs walk is the one users run. It binds the
	// output writer here: one that holds the script back for a record
	// when --json is given.
	script := &completionOutput{g: g}
	root.SetOut(script)
	root.InitDefaultCompletionCmd()
	root.SetOut(g.stdout)
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			for _, sh := range c.Commands() {
				run := sh.RunE
				sh.RunE = func(cmd *cobra.Command, args []string) error {
					if err := run(cmd, args); err != nil {
						return err
					}
					if g.JSON {
						writeJSONLine(g.stdout, completionRecord{"completion", cmd.Name(), script.buf.String()})
					}
					return nil
				}
			}
		}
	}
	wrapArgs(root)
	help := root.HelpFunc()
	root.SetHelpFunc(func(c *cobra.Command, args []string) {
		if !g.JSON {
			help(c, args)
			return
		}
		var buf bytes.Buffer
		out := c.OutOrStdout()
		c.SetOut(&buf)
		help(c, args)
		c.SetOut(out)
		writeJSONLine(g.stdout, helpRecord{"help", c.CommandPath(), buf.String()})
	})
	group := root.RunE
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if !*showVersion {
			return group(cmd, args)
		}
		if g.JSON {
			writeJSONLine(g.stdout, versionRecord{"version", version})
		} else {
			fmt.Fprintf(g.stdout, "bitpoll-install version %s\n", version)
		}
		return nil
	}
	return root
}

// wrapArgs makes argument-count mistakes and unknown subcommands usage
// errors (exit 2).
func wrapArgs(c *cobra.Command) {
	if c.HasSubCommands() && !c.Runnable() {
		// Left alone, cobra answers an unknown subcommand of a group with
		// its help and exit 0, or with a plain error (exit 1) at the root.
		c.Args = cobra.ArbitraryArgs
		c.RunE = runGroup
	} else if c.Args != nil {
		check := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return &usageError{argsError(cmd, args, err)}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		wrapArgs(sub)
	}
}

// runGroup runs a command that only groups subcommands: bare, it prints
// its help; with an argument, that argument is an unknown subcommand.
func runGroup(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's own default
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		// cobra lists them in command order; the nearest is the one meant.
		best := s[0]
		for _, c := range s[1:] {
			if suggest.Distance(args[0], c) < suggest.Distance(args[0], best) {
				best = c
			}
		}
		msg += fmt.Sprintf(": did you mean %q?", best)
	}
	return &usageError{errors.New(msg)}
}

// invalidFlagValue is pflag's message for a value its type cannot parse.
var invalidFlagValue = regexp.MustCompile(`^invalid argument "(.*)" for "(.*)" flag: `)

// flagError rewrites pflag's messages in the user's terms: a bad value
// says what the flag wants instead of quoting strconv, and an unknown
// flag suggests the nearest one the command has.
func flagError(c *cobra.Command, err error) error {
	msg := err.Error()
	if m := invalidFlagValue.FindStringSubmatch(msg); m != nil {
		value, names := m[1], m[2]
		name := names
		if i := strings.LastIndex(names, "--"); i >= 0 {
			name = names[i:] // "-p, --port" -> "--port"
		}
		want := "a valid value"
		if f := c.Flags().Lookup(strings.TrimPrefix(name, "--")); f != nil {
			switch f.Value.Type() {
			case "int", "int32", "int64", "uint", "uint16", "uint32", "uint64":
				want = "a whole number, like " + orDefault(f.DefValue, "8000")
			case "bool":
				want = "true or false"
			case "duration":
				want = "a duration, like 30s or 5m"
			case "float32", "float64":
				want = "a number"
			}
		}
		return fmt.Errorf("%s %q is not %s", name, value, want)
	}
	if name, ok := strings.CutPrefix(msg, "unknown flag: --"); ok {
		if s := nearestFlag(c, name); s != "" {
			return fmt.Errorf("unknown flag --%s: did you mean --%s?", name, s)
		}
		return fmt.Errorf("unknown flag --%s: %q has no such flag", name, c.CommandPath())
	}
	return err
}

func orDefault(s, def string) string {
	if s == "" || s == "0" {
		return def
	}
	return s
}

// nearestFlag is the flag of c closest to name, within two edits, or "".
func nearestFlag(c *cobra.Command, name string) string {
	best, bestD := "", 3
	visit := func(f *pflag.Flag) {
		if d := editDistance(name, f.Name); d < bestD || (d == bestD && f.Name < best) {
			best, bestD = f.Name, d
		}
	}
	c.Flags().VisitAll(visit)
	c.InheritedFlags().VisitAll(visit)
	if bestD > 2 {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// argsError rewrites cobra's "accepts 1 arg(s), received 0" as what the
// command takes, from its usage line.
func argsError(c *cobra.Command, args []string, err error) error {
	if !strings.Contains(err.Error(), "arg(s)") {
		return err
	}
	want := "no arguments"
	if _, rest, ok := strings.Cut(c.Use, " "); ok {
		want = rest
	}
	got := "none"
	if len(args) > 0 {
		q := make([]string, len(args))
		for i, a := range args {
			q[i] = strconv.Quote(a)
		}
		got = strings.Join(q, " ")
	}
	return fmt.Errorf("%s takes %s; got %s", strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" "), want, got)
}

// completionOutput is where cobra's completion commands write: standard
// output, or a buffer for the completion record with --json.
type completionOutput struct {
	g   *globalOptions
	buf bytes.Buffer
}

func (c *completionOutput) Write(p []byte) (int, error) {
	if c.g.JSON {
		return c.buf.Write(p)
	}
	return c.g.stdout.Write(p)
}

type helpRecord struct {
	MessageType string `json:"message_type"` // "help"
	Command     string `json:"command"`
	Text        string `json:"text"`
}

type completionRecord struct {
	MessageType string `json:"message_type"` // "completion"
	Shell       string `json:"shell"`
	Text        string `json:"text"`
}

// completeTargets offers targets for --target, never file names.
func completeTargets(targets func() []string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(_ *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
		var out []string
		for _, t := range targets() {
			if strings.HasPrefix(t, prefix) {
				out = append(out, t)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
