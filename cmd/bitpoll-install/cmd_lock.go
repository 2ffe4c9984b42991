package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bitpoll-install/bitpoll-install/fetch"
	"github.com/bitpoll-install/bitpoll-install/httpretry"
	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/resolve"
	"github.com/bitpoll-install/bitpoll-install/resolve/index"
	"github.com/bitpoll-install/bitpoll-install/standalone"
)

// lockOptions are the flags of "lock".
type lockOptions struct {
	Check     string
	Output    string
	AppSource string
	// checkSource: --app-source was given, so --check also checks the
	// lock against that tree's requirements file.
	checkSource  bool
	AppVersion   string
	AppURL       string
	Requirements string
	Extra        []string
	Targets      []string
	Glibc        string
	ExcludeNewer string
	IndexURL     string
	// PythonStandalone pins a standalone interpreter per target;
	// DownloadsJSON says from which download list (uv's format), else
	// the facts built in.
	PythonStandalone bool
	DownloadsJSON    string
	unpackOptions
}

func (o *lockOptions) AddFlags(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&o.Check, "check", "", "validate the lock `FILE` offline and exit (no network)")
	f.StringVarP(&o.Output, "output", "o", "bitpoll.lock", "write the lock to `FILE`")
	f.StringVar(&o.AppSource, "app-source", "git::"+resolve.Upstream+".git", "Bitpoll's source: a git repository or mirror, a directory or an archive URL")
	f.StringVar(&o.AppVersion, "app-version", "", "release tags to consider, as a semver `CONSTRAINT` (\"0.11.0\", \"~0.11\"; default the newest); for a directory, its version")
	f.StringVar(&o.AppURL, "app-url", "", "URL to record for the source (default: upstream for git sources)")
	f.StringVar(&o.Requirements, "requirements", "requirements.txt", "the pip requirements `FILE` inside the source tree")
	f.StringArrayVar(&o.Extra, "extra", resolve.DefaultExtra, "a PEP 508 `REQUIREMENT` added to the app's pins (repeat; replaces the default set)")
	f.StringArrayVar(&o.Targets, "target", resolve.DefaultTargets, "a `TARGET` to lock for, as cp<XY>-<x86_64|aarch64> (repeat)")
	f.StringVar(&o.Glibc, "glibc", resolve.DefaultGlibc, "the oldest glibc `VERSION` the locked wheels must run on")
	f.StringVar(&o.ExcludeNewer, "exclude-newer", "", "ignore files uploaded after `TIME` (RFC 3339 or YYYY-MM-DD), for a reproducible rerun")
	f.StringVar(&o.IndexURL, "index-url", "https://pypi.org/simple/", "the PEP 691 package index `URL`")
	f.BoolVar(&o.PythonStandalone, "python-standalone", false, "pin a python-build-standalone CPython for each target ([[interpreter]]), for hosts whose Python fits no target")
	f.StringVar(&o.DownloadsJSON, "python-downloads-json", "", "with --python-standalone: take the builds from this download list in uv's format (a `FILE` or https URL, as UV_PYTHON_DOWNLOADS_JSON_URL), and download each once to record its size")
	o.unpackOptions.AddFlags(c)
}

func newLockCommand(g *globalOptions) *cobra.Command {
	var o lockOptions
	c := &cobra.Command{
		Use:   "lock",
		Short: "Pin Bitpoll's source and every wheel in bitpoll.lock",
		Long: `Pin Bitpoll's source and every wheel it needs, for every target, in a lock.

The source is pinned by git commit, git tree id and, when the whole tree is at
hand, its NAR hash. The app's requirements file is resolved for each target:
the best wheel by tag priority, its metadata read through PEP 658 (no wheel
is downloaded), and every dependency checked against the pins. A pin that
exists only as an sdist is locked as one, with its build requirements. A pin
with wheels for some targets and none for others (libsass on aarch64) is
locked with its wheels and its sdist, the sdist marked for the targets
without a wheel (sdist-targets) and built from source there at install. A
target with neither is an error.

With --python-standalone, the lock also pins, for each target, a
python-build-standalone CPython (its install_only_stripped archive's URL,
sha256, version, release and oldest glibc), which install uses on a host
whose own Python fits no target. The builds are those uv's download metadata
lists for the newest release this bitpoll-install knows; they are not
downloaded, so their size is left out and install checks the sha256 alone.
--python-downloads-json takes them from a download list in uv's own format
instead, and downloads each archive once to check its hash and record its
size.

With --check, validate an existing lock without touching the network; add
--app-source DIR (a local tree or git repository) to check too that the lock
covers every pin of the tree's requirements file.`,
		Example: `  bitpoll-install lock --app-version 0.11.0
  bitpoll-install lock --app-source /srv/mirror/Bitpoll.git --app-version '~0.11' -o bitpoll.lock
  bitpoll-install lock --check bitpoll.lock`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.checkSource = cmd.Flags().Changed("app-source")
			return runLock(cmd.Context(), g, o)
		},
	}
	o.AddFlags(c)
	_ = c.RegisterFlagCompletionFunc("target", completeTargets(func() []string { return resolve.DefaultTargets }))
	return c
}

func runLock(ctx context.Context, g *globalOptions, o lockOptions) error {
	// Before anything is fetched: a mistyped path or an unknown scheme.
	if err := install.CheckAppSource(o.AppSource); err != nil {
		return err
	}
	if o.Check != "" {
		l, err := lockfile.ReadFile(o.Check)
		if err != nil {
			return err
		}
		if o.checkSource {
			if err := checkLockAgainstTree(ctx, l, o.AppSource); err != nil {
				return fmt.Errorf("%s: %w", o.Check, err)
			}
		}
		if g.JSON {
			writeJSONLine(g.stdout, checkRecord{"check", o.Check, true, l.App.Name, l.App.Version, len(l.Packages), list(l.Targets)})
		} else {
			pinned := ""
			if len(l.Interpreters) > 0 {
				var ts []string
				for _, e := range l.Interpreters {
					ts = append(ts, e.Target)
				}
				pinned = fmt.Sprintf(", standalone interpreters for %s", strings.Join(ts, ", "))
			}
			fmt.Fprintf(g.stdout, "%s: valid (%s %s, %d packages, targets %v%s)\n", o.Check, l.App.Name, l.App.Version, len(l.Packages), l.Targets, pinned)
		}
		return nil
	}
	var cutoff time.Time
	if o.ExcludeNewer != "" {
		var err error
		if cutoff, err = parseTime(o.ExcludeNewer); err != nil {
			return &usageError{fmt.Errorf("--exclude-newer: %w", err)}
		}
	}
	if err := o.unpackOptions.check(); err != nil {
		return err
	}
	if o.DownloadsJSON != "" {
		o.PythonStandalone = true
	}
	var downloads []standalone.Download
	if o.PythonStandalone {
		// Before the resolve: a bad list is found at once.
		var err error
		if downloads, err = readDownloads(ctx, g, o.DownloadsJSON); err != nil {
			return err
		}
	}
	idx := g.indexClient(index.Options{IndexURL: o.IndexURL, CacheDir: g.cacheDir(), UserAgent: "bitpoll-install/" + version, Unpack: o.Unpack})
	rep := newReporter(g)
	start := time.Now()
	l, err := resolve.Lock(ctx, idx, resolve.LockOptions{
		App:          resolve.AppSource{Src: o.AppSource, Version: o.AppVersion, URL: o.AppURL, Requirements: o.Requirements, Unpack: o.Unpack},
		Extra:        o.Extra,
		Targets:      o.Targets,
		Glibc:        o.Glibc,
		ExcludeNewer: cutoff,
		CreatedBy:    "bitpoll-install " + version,
	}, rep)
	if fe := (*resolve.FlagError)(nil); errors.As(err, &fe) {
		return &usageError{err}
	}
	if err != nil {
		return err
	}
	if o.PythonStandalone {
		if err := pinInterpreters(ctx, g, l, downloads, o.DownloadsJSON != ""); err != nil {
			return err
		}
	}
	if err := lockfile.WriteFile(o.Output, l); err != nil {
		return err
	}
	if g.JSON {
		writeJSONLine(g.stdout, lockRecord{"lock", o.Output, l.App.Name, l.App.Version, len(l.Packages), list(l.Targets), time.Since(start).Seconds()})
	} else {
		fmt.Fprintf(g.stdout, "wrote %s: %s %s, %s for %s in %.1fs\n", o.Output, l.App.Name, l.App.Version,
			plural(len(l.Packages), "package", "packages"), plural(len(l.Targets), "target", "targets"), time.Since(start).Seconds())
	}
	return nil
}

// checkRecord is lock --check's verdict on a valid lock (an invalid one
// is an error record).
type checkRecord struct {
	MessageType string   `json:"message_type"` // "check"
	File        string   `json:"file"`
	Valid       bool     `json:"valid"`
	App         string   `json:"app"`
	Version     string   `json:"version"`
	Packages    int      `json:"packages"`
	Targets     []string `json:"targets"`
}

// lockRecord says what lock wrote.
type lockRecord struct {
	MessageType string   `json:"message_type"` // "lock"
	File        string   `json:"file"`
	App         string   `json:"app"`
	Version     string   `json:"version"`
	Packages    int      `json:"packages"`
	Targets     []string `json:"targets"`
	Seconds     float64  `json:"seconds"`
}

// parseTime accepts RFC 3339 or a plain date (midnight UTC).
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a time: want RFC 3339 (2026-11-27T00:00:00Z) or a date (2026-11-27)", s)
	}
	return t, nil
}

// maxDownloadsJSON bounds a download list; uv's own is about 3 MiB.
const maxDownloadsJSON = 64 << 20

// readDownloads reads --python-downloads-json, a file or an https URL, or
// returns the built-in builds when it is empty.
func readDownloads(ctx context.Context, g *globalOptions, src string) ([]standalone.Download, error) {
	if src == "" {
		return standalone.Builtin, nil
	}
	var data []byte
	if strings.Contains(src, "://") {
		if _, err := httpretry.CheckURL(src); err != nil {
			return nil, &usageError{fmt.Errorf("--python-downloads-json: %w", err)}
		}
		var buf bytes.Buffer
		err := httpretry.New(httpretry.Options{HTTP: g.httpClient, UserAgent: "bitpoll-install/" + version}).Get(ctx, src, nil, func(r *httpretry.Response) error {
			buf.Reset()
			_, err := httpretry.Copy(&buf, r.Body, src, -1, maxDownloadsJSON, "")
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("--python-downloads-json: download %s: %w", src, err)
		}
		data = buf.Bytes()
	} else {
		var err error
		if data, err = os.ReadFile(src); err != nil {
			return nil, fmt.Errorf("--python-downloads-json: %w", err)
		}
	}
	ds, err := standalone.ParseDownloads(data, src)
	if err != nil {
		return nil, fmt.Errorf("--python-downloads-json: %w", err)
	}
	return ds, nil
}

// pinInterpreters puts an [[interpreter]] entry for each of l's targets
// into l. With download set each archive is fetched once, into the
// download cache install uses, to check its sha256 and record its size.
func pinInterpreters(ctx context.Context, g *globalOptions, l *lockfile.Lock, downloads []standalone.Download, download bool) error {
	targets, err := l.ParsedTargets()
	if err != nil {
		return err
	}
	entries, err := standalone.Entries(downloads, targets)
	if err != nil {
		return err
	}
	if download {
		rep := newReporter(g)
		d := &fetch.Downloader{CacheDir: g.cacheDir(), HTTPClient: g.httpClient, Progress: g.progress()}
		for i := range entries {
			e := &entries[i]
			rep.Notef("downloading %s for %s to check its hash and record its size", e, e.Target)
			paths, err := d.Fetch(ctx, []fetch.Artifact{{Name: path.Base(e.URL), URL: e.URL, Size: -1, SHA256: e.SHA256}})
			if err != nil {
				return fmt.Errorf("pin the interpreter for %s: %w", e.Target, err)
			}
			info, err := os.Stat(paths[e.SHA256])
			if err != nil {
				return fmt.Errorf("pin the interpreter for %s: %w", e.Target, err)
			}
			e.Size = info.Size()
		}
	}
	l.Interpreters = entries
	return nil
}
