// Package status gathers what `bitpoll-install status` shows: the current
// generation, the units, the URL, the migrations, disk use and the last
// backup. It reads only; doctor judges, status reports.
package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bitpoll-install/bitpoll-install/backup"
	"github.com/bitpoll-install/bitpoll-install/config"
	"github.com/bitpoll-install/bitpoll-install/layout"
	"github.com/bitpoll-install/bitpoll-install/service"
	"github.com/bitpoll-install/bitpoll-install/shim"
	"github.com/bitpoll-install/bitpoll-install/store"
	"github.com/bitpoll-install/bitpoll-install/unitgen"
)

// BackupRecord is where backup records the last backup it wrote (see
// backup.ReadLast): JSON with at least "created" (RFC 3339) and "path",
// and "secrets" (whether secrets went in).
func BackupRecord(l layout.Layout) string { return filepath.Join(l.OptDir(), backup.LastFile) }

// Options say where to look.
type Options struct {
	Layout layout.Layout
	// Systemd asks the running systemd about the units; without it
	// (--root) they are not asked about.
	Systemd bool
	Now     func() time.Time // nil: time.Now
}

// Report is the installation's state.
type Report struct {
	Generation int // 0: none is current
	AppName    string
	AppVersion string
	Python     string
	StorePath  string
	Created    time.Time // when the current generation was made
	Units      []service.UnitState
	// UnitsNote says why Units is empty: --root, or systemd's error.
	UnitsNote string
	URL       string   // base_url as installed
	Listen    []string // what the socket listens on
	// Migrations: as recorded when the current generation's migrations
	// ran; MigrationsApplied is -1 when nothing was recorded.
	MigrationsApplied int
	LastMigrations    []string // the newest migration of each of the app's own apps
	MigratedAt        *time.Time
	Disk              Disk
	Backup            *Backup // nil: none recorded
}

// Disk is bytes on disk. A file hardlinked into several places counts
// once, in the first of Store, Cache, Data and Snapshots.
type Disk struct {
	Store, Cache, Data, Snapshots int64
}

// Backup is the last backup as backup recorded it.
type Backup struct {
	Path    string
	Created time.Time
	Age     time.Duration
	Exists  bool  // the archive is still where it was written
	Secrets *bool // nil: not recorded
}

// Gather reads the state of the installation of o.Layout.
func Gather(ctx context.Context, o Options) (*Report, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	l := o.Layout
	r := &Report{MigrationsApplied: -1}
	if _, err := os.Stat(l.StoreDir()); err == nil {
		st, err := store.Open(l)
		if err != nil {
			return nil, err
		}
		cur, ok, err := st.CurrentGeneration()
		if err != nil {
			return nil, err
		}
		if ok {
			m, err := st.ReadMeta(cur.N)
			if err != nil {
				return nil, err
			}
			r.Generation, r.StorePath, r.Created = cur.N, cur.Target, cur.Created
			r.AppVersion, r.Python = m.AppVersion, m.Python
			if man, err := service.ReadManifest(cur.Target); err == nil {
				r.AppName = man.App.Name
				r.AppVersion = cmpOr(r.AppVersion, man.App.Version)
				r.Python = cmpOr(r.Python, man.Python)
			}
			if m.Migrations != nil {
				r.MigrationsApplied, r.LastMigrations = summarize(m.Migrations)
				r.MigratedAt = m.MigratedAt
			}
		}
	}
	r.URL, r.Listen = site(l)
	if o.Systemd {
		names := []string{unitgen.SocketUnit}
		if r.Generation > 0 {
			names = append(names, unitgen.ServiceUnit(r.Generation))
		}
		states, err := service.UnitStates(ctx, names...)
		if err != nil {
			r.UnitsNote = err.Error()
		}
		for _, n := range names {
			if s, ok := states[n]; ok {
				r.Units = append(r.Units, s)
				if n == unitgen.SocketUnit && len(s.Listen) > 0 {
					r.Listen = s.Listen
				}
			}
		}
	} else {
		r.UnitsNote = "with --root, systemd is not asked"
	}
	var err error
	if r.Disk, err = diskUse(l); err != nil {
		return nil, err
	}
	if r.Backup, err = lastBackup(l, o.Now()); err != nil {
		return nil, err
	}
	return r, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// djangoApps are Django's own apps, whose migrations say nothing of the
// app's version.
var djangoApps = map[string]bool{"admin": true, "auth": true, "contenttypes": true, "sessions": true, "sites": true}

// summarize counts the applied migrations and names the newest of each
// of the app's own apps.
func summarize(m map[string][]string) (int, []string) {
	n := 0
	last := []string{}
	for app, names := range m {
		n += len(names)
		if len(names) > 0 && !djangoApps[app] {
			sorted := append([]string(nil), names...)
			sort.Strings(sorted)
			last = append(last, app+"."+sorted[len(sorted)-1])
		}
	}
	sort.Strings(last)
	return n, last
}

// site is base_url and the listen address as installed: the settings
// file the service reads, and the config for the address.
func site(l layout.Layout) (string, []string) {
	var url string
	if data, err := os.ReadFile(l.SettingsFile()); err == nil {
		if s, err := shim.Parse(data); err == nil {
			url = s.BaseURL
		}
	}
	var listen []string
	if c, err := config.Load(l.ConfigFile()); err == nil {
		url = cmpOr(url, c.BaseURL)
		if c.Listen.Socket != "" {
			listen = []string{c.Listen.Socket}
		} else {
			host := c.Listen.Address
			if strings.Contains(host, ":") {
				host = "[" + host + "]"
			}
			listen = []string{host + ":" + strconv.Itoa(c.Listen.Port)}
		}
	}
	return url, listen
}

// diskUse measures the store, the download cache, the state directory
// and its snapshots, each inode once.
func diskUse(l layout.Layout) (Disk, error) {
	seen := map[[2]uint64]bool{}
	state := service.StatePath(l)
	snaps := filepath.Join(state, service.SnapshotDir)
	var d Disk
	for _, p := range []struct {
		dir  string
		skip string
		n    *int64
	}{{l.StoreDir(), "", &d.Store}, {l.CacheDir(), "", &d.Cache}, {state, snaps, &d.Data}, {snaps, "", &d.Snapshots}} {
		n, err := du(p.dir, p.skip, seen)
		if err != nil {
			return Disk{}, err
		}
		*p.n = n
	}
	return d, nil
}

// du is the space of the files under dir (but skip) not yet seen.
func du(dir, skip string, seen map[[2]uint64]bool) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // absent, or removed while walking
			}
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		key := [2]uint64{st.Dev, st.Ino}
		if !seen[key] {
			seen[key] = true
			total += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("measure %s: %w", dir, err)
	}
	return total, nil
}

// lastBackup reads the record backup leaves, if any.
func lastBackup(l layout.Layout, now time.Time) (*Backup, error) {
	path := BackupRecord(l)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var rec struct {
		Created time.Time `json:"created"`
		Path    string    `json:"path"`
		Secrets *bool     `json:"secrets"`
	}
	if err == nil {
		err = json.Unmarshal(data, &rec)
	}
	if err != nil {
		return nil, fmt.Errorf("read the backup record %s: %w (backup writes it; remove it if it is damaged)", path, err)
	}
	b := &Backup{Path: rec.Path, Created: rec.Created, Age: now.Sub(rec.Created), Secrets: rec.Secrets}
	if _, err := os.Stat(rec.Path); err == nil {
		b.Exists = true
	}
	return b, nil
}
