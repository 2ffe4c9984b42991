package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/pelletier/go-toml/v2"
	"golang.org/x/sys/unix"

	"github.com/bitpoll-install/bitpoll-install/config"
	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/progress"
	"github.com/bitpoll-install/bitpoll-install/pyenv"
	"github.com/bitpoll-install/bitpoll-install/service"
	"github.com/bitpoll-install/bitpoll-install/shim"
	"github.com/bitpoll-install/bitpoll-install/store"
	"github.com/bitpoll-install/bitpoll-install/unitgen"
)

// checkConfig: the config is valid, and what the service runs with is
// what it says (an edit not yet installed is not in effect).
func checkConfig(_ context.Context, e *env) Result {
	path := e.o.Layout.ConfigFile()
	c, err := e.config()
	if errors.Is(err, fs.ErrNotExist) {
		return fail(e.cmd("install")+" writes a commented default; set base_url and allowed_hosts in it", "%s is missing", path)
	}
	if err != nil {
		msgs := strings.Split(strings.TrimSpace(err.Error()), "\n")
		detail := msgs[0]
		if len(msgs) > 1 {
			detail += fmt.Sprintf(" (and %d more)", len(msgs)-1)
		}
		return fail(fmt.Sprintf("edit %s as the message says, then %s", path, e.cmd("install")), "%s", detail)
	}
	s, err := c.Settings(unitgen.DefaultPaths())
	if err != nil {
		return fail(fmt.Sprintf("edit %s, then %s", path, e.cmd("install")), "%v", err)
	}
	want, err := s.Marshal()
	if err != nil {
		return fail(fmt.Sprintf("edit %s, then %s", path, e.cmd("install")), "%v", err)
	}
	if got, err := os.ReadFile(e.o.Layout.SettingsFile()); err == nil && !bytes.Equal(got, want) {
		return fail(e.cmd("install")+" applies it", "%s is valid, but it was changed since it was last installed: the service runs with the old settings (%s)", path, e.o.Layout.SettingsFile())
	}
	return ok("%s is valid and installed", path)
}

// checkSecrets: the secrets directory is the caller's (root's) alone,
// every secret in it is too, and the secrets the service needs exist.
func checkSecrets(_ context.Context, e *env) Result {
	dir := e.o.Layout.SecretsDir()
	uid := os.Geteuid()
	owner := "root:root"
	if uid != 0 {
		owner = fmt.Sprintf("%d", uid)
	}
	info, err := os.Lstat(dir)
	if err != nil {
		return fail(e.cmd("install")+" generates the secrets (restore "+shim.FieldEncryptionKeyFile+" from a backup if there was one: data encrypted with it needs it)", "%s: %v", dir, errors.Unwrap(err))
	}
	var problems, fixes []string
	add := func(problem, fix string) {
		problems = append(problems, problem)
		if !slices.Contains(fixes, fix) {
			fixes = append(fixes, fix)
		}
	}
	own := func(path string, info fs.FileInfo, mode fs.FileMode) {
		if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) != uid {
			add(fmt.Sprintf("%s is owned by uid %d, want %d", path, st.Uid, uid), "chown "+owner+" "+path)
		}
		if info.Mode().Perm()&^mode != 0 {
			add(fmt.Sprintf("%s has mode %04o, want %04o", path, info.Mode().Perm(), mode), fmt.Sprintf("chmod %04o %s", mode, path))
		}
	}
	if !info.IsDir() {
		return fail(fmt.Sprintf("move %s away, then %s", dir, e.cmd("install")), "%s is not a directory", dir)
	}
	own(dir, info, 0o700)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fail("run as root (sudo), or give --root DIR", "read %s: %v", dir, errors.Unwrap(err))
	}
	for _, d := range entries {
		p := filepath.Join(dir, d.Name())
		info, err := os.Lstat(p)
		if err != nil {
			continue
		}
		switch {
		case info.Mode().Type() == fs.ModeSymlink:
			add(p+" is a symlink; secrets are plain files", "replace "+p+" with the file it points to (cp --remove-destination)")
		case info.Mode().IsRegular():
			own(p, info, 0o600)
		}
	}
	need := []string{shim.SecretKeyFile, shim.FieldEncryptionKeyFile}
	if c, err := e.config(); err == nil {
		if c.Database.Password {
			need = append(need, shim.DBPasswordFile)
		}
		if c.Mail != nil && c.Mail.Password {
			need = append(need, shim.EmailPasswordFile)
		}
	}
	for _, name := range need {
		p := filepath.Join(dir, name)
		info, err := os.Stat(p)
		switch {
		case err != nil && (name == shim.DBPasswordFile || name == shim.EmailPasswordFile):
			add(p+" is missing, and the config says password = true", "write the password to "+p+" (chmod 0600)")
		case err != nil:
			add(p+" is missing", e.cmd("install")+" generates it (restore "+shim.FieldEncryptionKeyFile+" from a backup if there was one)")
		case info.Size() == 0:
			add(p+" is empty", "remove "+p+", then "+e.cmd("install")+" generates it")
		}
	}
	if len(problems) > 0 {
		detail := strings.Join(problems, "; ")
		return fail(strings.Join(fixes, "; "), "%s", detail)
	}
	return ok("%s and its %d files are %s's alone (0700, 0600)", dir, len(entries), owner)
}

// checkInterpreter: the Python the current generation's venv was built
// on still runs, and is the same one. A distro upgrade that replaces or
// removes it breaks the venv; the store path must be built anew.
func checkInterpreter(ctx context.Context, e *env) Result {
	cur, r := e.needGeneration()
	if r != nil {
		return *r
	}
	m, err := service.ReadManifest(cur.Target)
	if err != nil {
		return fail(e.rebuild(m, ""), "generation %d: %v", cur.N, err)
	}
	tree := manifestTree(cur.Target)
	path := m.PythonPath()
	recorded := pythonVersion(m.Python)
	it, err := pyenv.NewProber().Probe(ctx, path)
	if err != nil {
		why := "no longer runs (" + firstLine(err.Error()) + ")"
		if _, serr := os.Stat(path); errors.Is(serr, fs.ErrNotExist) {
			why = "is gone"
		}
		return fail(e.rebuild(m, tree)+" builds it for a Python that is there now",
			"generation %d's venv was built on %s (CPython %s), which %s: a distro upgrade of Python breaks the venv", cur.N, path, recorded, why)
	}
	if it.ID() != m.Python {
		return fail(e.rebuild(m, tree)+" builds it for this Python",
			"generation %d's venv was built on %s (CPython %s), and that is now %s at %s", cur.N, path, recorded, it, it.RealPath)
	}
	return ok("generation %d runs on %s, as it was built", cur.N, it)
}

// pythonVersion is the version in an interpreter ID ("cpython 3.13.5
// x86_64 ...").
func pythonVersion(id string) string {
	f := strings.Fields(id)
	if len(f) < 2 {
		return "(unknown)"
	}
	return f[1]
}

// manifestTree is the app's git tree id in a store path's manifest.
func manifestTree(storePath string) string {
	data, err := os.ReadFile(filepath.Join(storePath, install.Manifest))
	if err != nil {
		return ""
	}
	var m struct{ App struct{ Tree string } }
	if err := json.Unmarshal(data, &m); err != nil {
		return ""
	}
	return m.App.Tree
}

// checkStore: every store path is as it was sealed, in structure in
// full and in content for a QuickSample; `verify` rehashes it all.
func checkStore(ctx context.Context, e *env) Result {
	st, _, _, err := e.generation()
	if err != nil {
		return fail(e.cmd("install"), "%v", err)
	}
	r, err := st.Check(ctx, store.CheckOptions{Sample: QuickSample})
	if errors.Is(err, fs.ErrPermission) {
		return fail("run as root (sudo), or give --root DIR", "%v", err)
	}
	if err != nil {
		return fail("run doctor again once no other bitpoll-install changes the store (gc removes store paths)", "%v", err)
	}
	var bad []store.Finding
	unsealed := 0
	for _, f := range r.Findings {
		if f.Kind == store.FindUnsealed {
			unsealed++ // built before seal records: nothing to compare with
			continue
		}
		bad = append(bad, f)
	}
	if len(bad) > 0 {
		more := ""
		if len(bad) > 1 {
			more = fmt.Sprintf(" (and %d more)", len(bad)-1)
		}
		return fail(e.cmd("verify")+" lists every change; find out what made it, then rebuild the store path (remove it once no kept generation uses it, and install again)",
			"the store is not as it was sealed: %s%s", bad[0], more)
	}
	note := ""
	if unsealed > 0 {
		note = fmt.Sprintf("; %d built before seal records, not checked", unsealed)
	}
	return ok("%d store paths as sealed: %d files checked, %d of them rehashed (%g%% sample; verify rehashes all)%s",
		r.StorePaths-unsealed, r.Files, r.HashedFiles, r.Sample, note)
}

// unitFiles are the units install writes.
var unitFiles = []string{unitgen.SocketUnit, unitgen.ServiceTemplate, unitgen.MigrateTemplate}

// checkUnits: the unit files are installed, and under systemd the
// socket and the current generation's service are enabled and the
// service has not failed.
func checkUnits(ctx context.Context, e *env) Result {
	var missing []string
	for _, u := range unitFiles {
		if _, err := os.Stat(filepath.Join(e.o.Layout.Root, service.UnitDir, u)); err != nil {
			missing = append(missing, u)
		}
	}
	if len(missing) > 0 {
		return fail(e.cmd("install")+" writes them", "%s missing from %s", strings.Join(missing, ", "), filepath.Join(e.o.Layout.Root, service.UnitDir))
	}
	if !e.o.Systemd {
		return ok("%s installed in %s (with --root, systemd is not asked)", strings.Join(unitFiles, ", "), filepath.Join(e.o.Layout.Root, service.UnitDir))
	}
	cur, r := e.needGeneration()
	if r != nil {
		return *r
	}
	svc := unitgen.ServiceUnit(cur.N)
	states, err := service.UnitStates(ctx, unitgen.SocketUnit, svc)
	if err != nil {
		return fail("run as root on the installed system, or give --root DIR", "%v", err)
	}
	var problems []string
	for _, u := range []string{unitgen.SocketUnit, svc} {
		s := states[u]
		switch {
		case s.Load == "not-found" || s.Load == "":
			return fail("sudo systemctl daemon-reload", "systemd has not loaded %s", u)
		case s.File != "enabled":
			problems = append(problems, fmt.Sprintf("%s is %s", u, orUnknown(s.File)))
		}
	}
	if len(problems) > 0 {
		return fail("sudo systemctl enable "+unitgen.SocketUnit+" "+svc, "%s, want enabled (a reboot would not start it)", strings.Join(problems, "; "))
	}
	if states[svc].Active == "failed" {
		return fail(fmt.Sprintf("journalctl -u %s says why; then sudo systemctl restart %s", svc, svc), "%s has failed", svc)
	}
	return ok("%s and %s are installed and enabled; %s is %s", unitgen.SocketUnit, svc, svc, states[svc].Active)
}

// checkSocket: bitpoll.socket is active, and what it listens on takes a
// connection.
func checkSocket(ctx context.Context, e *env) Result {
	if !e.o.Systemd {
		return skip("with --root there is no systemd to ask")
	}
	start := "sudo systemctl start " + unitgen.SocketUnit
	if _, cur, ok, _ := e.generation(); ok {
		start += " " + unitgen.ServiceUnit(cur.N)
	}
	states, err := service.UnitStates(ctx, unitgen.SocketUnit)
	if err != nil {
		return fail("run as root on the installed system, or give --root DIR", "%v", err)
	}
	s := states[unitgen.SocketUnit]
	if s.Active != "active" {
		return fail(start, "%s is %s (%s): nothing listens for Bitpoll", unitgen.SocketUnit, orUnknown(s.Active), orUnknown(s.Sub))
	}
	for _, addr := range s.Listen {
		network := "tcp"
		if strings.HasPrefix(addr, "/") {
			network = "unix"
		} else if strings.HasPrefix(addr, "@") {
			continue // abstract: not ours
		}
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return fail("sudo systemctl restart "+unitgen.SocketUnit, "%s is active, but %s takes no connection: %v", unitgen.SocketUnit, addr, err)
		}
		c.Close()
	}
	return ok("%s listens on %s", unitgen.SocketUnit, strings.Join(s.Listen, ", "))
}

// checkDatabase: the current generation's code reaches the database,
// which holds exactly its migrations and passes SQLite's integrity
// check. Django answers, through the same helper the health gate uses.
func checkDatabase(ctx context.Context, e *env) Result {
	cur, r := e.needGeneration()
	if r != nil {
		return *r
	}
	st, err := service.DatabaseState(ctx, e.o.Layout, e.o.Systemd, cur.N)
	if err != nil {
		return fail("check database.url in "+e.o.Layout.ConfigFile()+" and that the database server runs and lets the service in",
			"generation %d cannot read the database: %s", cur.N, firstLine(err.Error()))
	}
	migrate := "sudo bitpoll-install manage migrate"
	if !e.o.Systemd {
		migrate = fmt.Sprintf("run generation %d's migrations (manage.py migrate with the installed settings; as root on the system itself: sudo bitpoll-install manage migrate)", cur.N)
	}
	switch {
	case len(st.Errors) > 0:
		return fail(e.cmd("rollback")+" to the generation before, or fix the app and install again", "generation %d's code fails Django's checks: %s", cur.N, firstLine(st.Errors[0]))
	case !st.Database:
		return fail(e.cmd("install")+" migrates a new one, or restore a backup (bitpoll-install restore FILE)", "there is no database yet")
	case len(st.Unknown) > 0:
		return fail("switch to the generation that applied them (bitpoll-install generations lists each one's migrations), or restore the snapshot from before (bitpoll-install rollback --help)",
			"the database has migrations generation %d's code does not know (%d): %s", cur.N, len(st.Unknown), nodes(st.Unknown))
	case len(st.Unapplied) > 0:
		verb := "migrations of generation %d are"
		if len(st.Unapplied) == 1 {
			verb = "migration of generation %d is"
		}
		return fail(migrate, "%d "+verb+" not applied: %s", len(st.Unapplied), cur.N, nodes(st.Unapplied))
	case st.Integrity != "" && st.Integrity != "ok":
		return fail("restore the last backup (bitpoll-install restore FILE) or the snapshot from before the last switch (bitpoll-install rollback --restore-snapshot)",
			"SQLite's integrity_check: %s", firstLine(st.Integrity))
	}
	integrity := ""
	if st.Integrity == "ok" {
		integrity = "; SQLite's integrity_check passes"
	}
	return ok("reachable; all %d migrations of generation %d applied%s", len(st.Applied), cur.N, integrity)
}

func nodes[T fmt.Stringer](ns []T) string {
	var s []string
	for i, n := range ns {
		if i == 5 {
			s = append(s, fmt.Sprintf("and %d more", len(ns)-5))
			break
		}
		s = append(s, n.String())
	}
	return strings.Join(s, ", ")
}

// checkDisk: each file system of the installation has room for an
// upgrade (another store path as large as the current one, a snapshot
// of the database) and MinFree beyond.
func checkDisk(_ context.Context, e *env) Result {
	l := e.o.Layout
	type fsNeed struct {
		paths []string
		free  uint64
		need  int64
	}
	var order []string
	byID := map[string]*fsNeed{}
	add := func(path string, need int64) error {
		p := existing(path)
		free, id, err := e.o.Statfs(p)
		if err != nil {
			return fmt.Errorf("statfs %s: %w", p, err)
		}
		f, ok := byID[id]
		if !ok {
			f = &fsNeed{free: free, need: e.o.MinFree}
			byID[id] = f
			order = append(order, id)
		}
		f.paths = append(f.paths, path)
		f.need += need
		return nil
	}
	var storeNeed int64
	if _, cur, ok, _ := e.generation(); ok {
		if u, err := store.DiskUsage(cur.Target); err == nil {
			storeNeed = u.Own + u.Shared
		}
	}
	var dbNeed int64
	if info, err := os.Stat(filepath.Join(l.StateDir(), "db.sqlite3")); err == nil {
		dbNeed = 2 * info.Size()
	}
	for _, p := range []struct {
		path string
		need int64
	}{{l.StoreDir(), storeNeed}, {l.StateDir(), dbNeed}, {l.CacheDir(), 0}} {
		if err := add(p.path, p.need); err != nil {
			return fail("run as root (sudo), or give --root DIR", "%v", err)
		}
	}
	var parts []string
	for _, id := range order {
		f := byID[id]
		if int64(f.free) < f.need {
			return fail(e.cmd("gc")+" frees old generations and their snapshots; or make room on the file system of "+f.paths[0],
				"the file system of %s has %s free, want %s (an upgrade's store path and snapshot, and %s spare)",
				strings.Join(f.paths, " and "), progress.FormatBytes(int64(f.free)), progress.FormatBytes(f.need), progress.FormatBytes(e.o.MinFree))
		}
		parts = append(parts, fmt.Sprintf("%s free for %s", progress.FormatBytes(int64(f.free)), strings.Join(f.paths, ", ")))
	}
	return ok("%s", strings.Join(parts, "; "))
}

// existing is path or its nearest parent that exists.
func existing(path string) string {
	for {
		if _, err := os.Stat(path); err == nil || filepath.Dir(path) == path {
			return path
		}
		path = filepath.Dir(path)
	}
}

func statfs(path string) (uint64, string, error) {
	var s unix.Statfs_t
	if err := unix.Statfs(path, &s); err != nil {
		return 0, "", err
	}
	return s.Bavail * uint64(s.Bsize), fmt.Sprint(s.Fsid), nil
}

// rawConfig is what the host and proxy checks read of the config,
// leniently: a config with another mistake (the config check's) still
// says what its base_url and listen address are.
type rawConfig struct {
	BaseURL      string   `toml:"base_url"`
	AllowedHosts []string `toml:"allowed_hosts"`
	SecureProxy  bool     `toml:"secure_proxy_ssl_header"`
	Listen       struct {
		Address string `toml:"address"`
		Socket  string `toml:"socket"`
	} `toml:"listen"`
}

func (e *env) rawConfig() (*rawConfig, error) {
	if !e.rawRead {
		e.rawRead = true
		data, err := os.ReadFile(e.o.Layout.ConfigFile())
		if err == nil {
			var c rawConfig
			if err = toml.Unmarshal(data, &c); err == nil {
				e.raw = &c
			}
		}
		e.rawErr = err
	}
	return e.raw, e.rawErr
}

// checkAllowedHosts: Django lets requests for base_url's host through.
func checkAllowedHosts(_ context.Context, e *env) Result {
	c, err := e.rawConfig()
	if err != nil {
		return skip("the config cannot be read (see the config check)")
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || u.Hostname() == "" {
		return skip("base_url %q has no host (see the config check)", c.BaseURL)
	}
	host := u.Hostname()
	cfg := config.Config{BaseURL: c.BaseURL, AllowedHosts: c.AllowedHosts}
	if !cfg.HostAllowed(host) {
		return fail(fmt.Sprintf("add %q to allowed_hosts in %s, then %s", host, e.o.Layout.ConfigFile(), e.cmd("install")),
			"base_url's host %q is not in allowed_hosts %q: Django answers every request for it with 400", host, c.AllowedHosts)
	}
	return ok("base_url's host %q is in allowed_hosts", host)
}

// maxClockBehind is how far before the newest generation's creation the
// clock may be before the clock check says it went back.
const maxClockBehind = 5 * time.Minute

// checkClock, behind a TLS proxy: the clock is synchronized and has not
// gone back behind the newest generation. HSTS, cookies' expiry and the
// proxy's certificates all need the right time.
func checkClock(_ context.Context, e *env) Result {
	c, err := e.rawConfig()
	if err != nil {
		return skip("the config cannot be read (see the config check)")
	}
	if !c.SecureProxy {
		return skip("secure_proxy_ssl_header is not set")
	}
	const fix = "turn on time synchronization: sudo timedatectl set-ntp true (systemd-timesyncd or chrony)"
	synced, err := e.o.Clock()
	if err != nil {
		return fail(fix, "cannot read the clock's state: %v", err)
	}
	if !synced {
		return fail(fix, "the system clock is not synchronized (the kernel reports TIME_ERROR)")
	}
	now := e.o.Now()
	if st, _, _, err := e.generation(); err == nil {
		if gens, err := st.Generations(); err == nil && len(gens) > 0 {
			newest := gens[len(gens)-1]
			if now.Add(maxClockBehind).Before(newest.Created) {
				return fail(fix, "the clock says %s, before generation %d was made (%s)", now.UTC().Format(time.RFC3339), newest.N, newest.Created.UTC().Format(time.RFC3339))
			}
		}
	}
	return ok("the clock is synchronized")
}

func clockSynced() (bool, error) {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return false, err
	}
	return state != unix.TIME_ERROR, nil
}

// checkProxy, behind a TLS proxy: base_url is https, and only the proxy
// reaches gunicorn, since Django believes X-Forwarded-Proto from anyone
// who connects.
func checkProxy(_ context.Context, e *env) Result {
	c, err := e.rawConfig()
	if err != nil {
		return skip("the config cannot be read (see the config check)")
	}
	if !c.SecureProxy {
		return skip("secure_proxy_ssl_header is not set")
	}
	cfg := e.o.Layout.ConfigFile()
	if !strings.HasPrefix(c.BaseURL, "https://") {
		return fail(fmt.Sprintf("set base_url to the https:// URL the proxy serves in %s, or remove secure_proxy_ssl_header; then %s", cfg, e.cmd("install")),
			"secure_proxy_ssl_header trusts X-Forwarded-Proto from the proxy, but base_url %q is not https", c.BaseURL)
	}
	if c.Listen.Socket == "" {
		addr := c.Listen.Address
		if addr == "" {
			addr = config.Default().Listen.Address
		}
		if a, err := netip.ParseAddr(addr); err == nil && !a.IsLoopback() {
			return fail(fmt.Sprintf("listen on 127.0.0.1 or a unix socket ([listen] in %s) so that only the proxy reaches gunicorn; then %s", cfg, e.cmd("install")),
				"gunicorn listens on %s, so a client can pass the proxy and send its own X-Forwarded-Proto: https, which secure_proxy_ssl_header makes Django believe", addr)
		}
	}
	return ok("base_url is https and only local clients reach gunicorn, so X-Forwarded-Proto comes from the proxy")
}
