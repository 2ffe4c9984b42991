package systest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/internal/nspawn"
	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/service"
	"github.com/bitpoll-install/bitpoll-install/shim"
)

// TestBookwormStandalone installs real Bitpoll 0.11.0 as a service on
// Debian 12, whose Python 3.11 is too old for it, with the interpreter
// the lock pins. The archive (scripts/standalone-python.sh: CPython 3.13
// built in the Debian 12 tree, in python-build-standalone's layout) is
// served over https from loopback, with a CA made for the test; `lock
// --python-downloads-json` on the host locks its URL and real hash, and
// `install` in the booted machine, given no --python, finds no host
// Python for the lock's target and takes the locked one. Then the site
// serves, a poll is created, Django's deploy checks pass, and the unit
// is as confined as on trixie.
func TestBookwormStandalone(t *testing.T) {
	rootfs := nspawn.RootfsBookworm(t)
	archive := testkit.BuiltPython(t)
	mirror := testkit.BitpollMirror(t)
	testkit.NeedNetwork(t)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	start := time.Now()

	dl := testkit.ServePythonDownloads(t, archive)
	src := testkit.ExportRelease(ctx, t, mirror, "0.11.0")
	host := t.TempDir()
	cli := filepath.Join(host, "bitpoll-install")
	if err := os.Rename(testkit.BuildCLI(t), cli); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(host, "ca-bundle.pem")
	copyFile(t, dl.Bundle, bundle)
	target := "cp" + strings.ReplaceAll(archive.Minor(), ".", "") + "-x86_64"

	// The lock, made on the host: PyPI through the host's CAs, the
	// interpreter through the test's.
	lockPath := filepath.Join(host, "bitpoll.lock")
	lockCmd := exec.CommandContext(ctx, cli, "--root", t.TempDir(), "lock", "--app-source", src, "--app-version", "0.11.0",
		"--target", target, "--exclude-newer", testkit.ExcludeNewer.Format(time.RFC3339),
		"--python-standalone", "--python-downloads-json", dl.JSONURL, "-o", lockPath)
	lockCmd.Env = append(os.Environ(), "SSL_CERT_FILE="+dl.Bundle)
	if out, err := lockCmd.CombinedOutput(); err != nil {
		t.Fatalf("lock --python-downloads-json: %v\n%s", err, out)
	}
	t.Logf("lock with the interpreter entry: %v", time.Since(start).Round(time.Millisecond))
	checkInterpreterEntry(t, lockPath, target, dl)

	m := nspawn.Boot(ctx, t, nspawn.Options{Rootfs: rootfs, Binds: []nspawn.Bind{
		{Host: host, Path: "/srv/test"},
		{Host: src, Path: appDir},
	}}, "bitpoll-bookworm")
	// The premise: the machine's own Python cannot run Bitpoll 0.11.0.
	if out, err := m.Exec(ctx, "python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"); err != nil || strings.TrimSpace(string(out)) != "3.11" {
		t.Fatalf("python3 in the Debian 12 machine is %q (%v), want 3.11", out, err)
	}

	port := testkit.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	writeConfig(t, m, fmt.Sprintf("base_url = %q\nallowed_hosts = [\"127.0.0.1\", \"localhost\"]\n\n[listen]\naddress = \"127.0.0.1\"\nport = %d\n", base, port))
	env := []string{"SSL_CERT_FILE=/srv/test/ca-bundle.pem"}
	installStart := time.Now()
	out, err := m.Command(ctx, env, "/srv/test/bitpoll-install", "install", "--lock", "/srv/test/bitpoll.lock", "--app-source", appDir).CombinedOutput()
	if err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	t.Logf("install with the locked interpreter (fetch, unpack, build, units, migrate, start): %v\n%s", time.Since(installStart).Round(time.Millisecond), out)
	if n := dl.ArchiveRequests(); n != 2 {
		t.Errorf("the archive was fetched %d times, want twice: once by lock, once by install", n)
	}

	// The store path runs on the interpreter unpacked into the store.
	var manifest struct{ Python, BasePrefix string }
	cur, err := m.Exec(ctx, "readlink", "-f", "/opt/bitpoll/current")
	if err != nil {
		t.Fatal(err)
	}
	data, err := m.Exec(ctx, "cat", strings.TrimSpace(string(cur))+"/"+install.Manifest)
	if err == nil {
		err = json.Unmarshal(data, &manifest)
	}
	if err != nil {
		t.Fatalf("read the store manifest: %v", err)
	}
	storeInterp := regexp.MustCompile(`^/opt/bitpoll/store/[^/]+-cpython-` + regexp.QuoteMeta(archive.Version) + `-` + testkit.TestRelease + `/python$`)
	if !storeInterp.MatchString(manifest.BasePrefix) || !strings.HasPrefix(manifest.Python, "cpython "+archive.Version) {
		t.Fatalf("the generation runs on %q (prefix %q), want CPython %s from the store, a path like %s", manifest.Python, manifest.BasePrefix, archive.Version, storeInterp)
	}

	for _, u := range []string{"bitpoll.socket", firstGen} {
		if state := systemctl(ctx, t, m, "is-active", u); state != "active" {
			t.Errorf("%s is %q after install, want active", u, state)
		}
	}
	get200(t, base)
	testkit.CreatePoll(t, base, "bookworm-0-11-0", "A poll on Debian 12")

	// The service's process is the store's interpreter, and it is
	// confined as on trixie: ProtectHome= and the rest.
	pid := mainPID(ctx, t, m)
	exe, err := m.Exec(ctx, "readlink", fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil || !strings.HasPrefix(strings.TrimSpace(string(exe)), manifest.BasePrefix+"/bin/python") {
		t.Errorf("the service's process runs %q (%v), want the interpreter under %s", exe, err, manifest.BasePrefix)
	}
	checkHardening(ctx, t, m, pid)
	checkConfined(ctx, t, m, pid)
	checkPrivateNetwork(ctx, t, m, pid)
	score, err := m.Exec(ctx, "systemd-analyze", "security", "--offline=true", "/etc/systemd/system/bitpoll@.service")
	t.Logf("systemd-analyze security (systemd 252): %s", lastLine(score))
	if v := overallExposure.FindSubmatch(score); v == nil || string(v[1]) > "0.6" {
		t.Errorf("systemd-analyze security rates bitpoll.service %q (%v), want 0.6 or lower", lastLine(score), err)
	}

	checkDeployIn(ctx, t, m, host, strings.TrimSpace(string(cur)))
	t.Logf("the whole test: %v", time.Since(start).Round(time.Millisecond))
}

// checkInterpreterEntry reads the lock and checks its [[interpreter]]
// entry for target: the served archive's URL, size and real sha256, and
// the glibc it needs.
func checkInterpreterEntry(t *testing.T, path, target string, dl *testkit.PythonDownloads) {
	t.Helper()
	l, err := lockfile.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"[[interpreter]]",
		fmt.Sprintf("target = %q", target),
		fmt.Sprintf("version = %q", dl.Archive.Version),
		fmt.Sprintf("release = %q", testkit.TestRelease),
		fmt.Sprintf("url = %q", dl.ArchiveURL),
		fmt.Sprintf("size = %d", dl.Archive.Size),
		fmt.Sprintf("glibc = %q", dl.Archive.Glibc),
		fmt.Sprintf("sha256 = %q", dl.Archive.SHA256),
	} {
		if !strings.Contains(string(text), want) {
			t.Errorf("%s lacks %s in its interpreter entry:\n%s", path, want, interpreterTables(string(text)))
		}
	}
	if len(l.Packages) == 0 {
		t.Errorf("%s locks no packages", path)
	}
}

// interpreterTables is the part of a lock from its first [[interpreter]].
func interpreterTables(text string) string {
	if i := strings.Index(text, "[[interpreter]]"); i >= 0 {
		return text[i:]
	}
	return "(no [[interpreter]] table)"
}

// checkHardening checks, on the running unit, the directives that keep
// the service away from the rest of the system (the standalone
// interpreter lives in the store, so none needs relaxing for it), and
// that systemd 252 took every line of the units.
func checkHardening(ctx context.Context, t *testing.T, m *nspawn.Machine, pid int) {
	t.Helper()
	for _, p := range []struct{ prop, want string }{
		{"ProtectHome", "yes"},
		{"ProtectSystem", "strict"},
		{"RootDirectory", "/opt/bitpoll/root"},
		{"PrivateTmp", "yes"},
		{"PrivateDevices", "yes"},
		{"PrivateUsers", "yes"},
		{"ProtectProc", "invisible"},
		{"NoNewPrivileges", "yes"},
		{"DynamicUser", "yes"},
		{"MemoryDenyWriteExecute", "yes"},
		{"CapabilityBoundingSet", ""},
		{"LockPersonality", "yes"},
		{"RestrictSUIDSGID", "yes"},
		{"ProtectKernelModules", "yes"},
		{"ProtectKernelTunables", "yes"},
		{"ProtectControlGroups", "yes"},
		{"SystemCallArchitectures", "native"},
	} {
		if got := systemctl(ctx, t, m, "show", "-p", p.prop, "--value", firstGen); got != p.want {
			t.Errorf("%s %s = %q, want %q", firstGen, p.prop, got, p.want)
		}
	}
	// By behaviour: a file under /home, which root sees anywhere else, is
	// out of sight in the service's mount namespace and root directory.
	if _, err := m.Exec(ctx, "sh", "-c", "mkdir -p /home && echo marker > /home/bookworm-marker && chmod 644 /home/bookworm-marker"); err != nil {
		t.Fatal(err)
	}
	if out, err := m.Exec(ctx, "nsenter", "-t", strconv.Itoa(pid), "-m", "-r", "test", "-e", "/home/bookworm-marker"); err == nil {
		t.Errorf("/home/bookworm-marker is visible in the service's mount namespace, want /home out of sight (ProtectHome=yes):\n%s", out)
	}
	// The controls: the same check finds the marker from the machine's
	// PID 1, and runs in the service's namespace.
	if _, err := m.Exec(ctx, "nsenter", "-t", "1", "-m", "-r", "test", "-e", "/home/bookworm-marker"); err != nil {
		t.Errorf("the machine's own mount namespace does not show /home/bookworm-marker either: the check proves nothing: %v", err)
	}
	if _, err := m.Exec(ctx, "nsenter", "-t", strconv.Itoa(pid), "-m", "-r", "test", "-e", "/usr/bin/test"); err != nil {
		t.Errorf("the check of /root cannot run in the service's mount namespace: %v", err)
	}
	// systemd logs "FILE:LINE: ..., ignoring" for a line it does not take.
	journal, err := m.Exec(ctx, "journalctl", "-b", "--no-pager", "-o", "cat")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range unitWarning.FindAll(journal, -1) {
		t.Errorf("systemd 252 did not take a line of the units: %s", l)
	}
}

// unitWarning is systemd's complaint about a line of one of our units.
var unitWarning = regexp.MustCompile(`(?m)^.*bitpoll[^ ]*\.(?:service|socket):\d+: .*$`)

// checkDeployIn runs `manage.py check --deploy` inside the booted
// machine, on the store path cur, with a production-like https
// configuration, and fails on any finding.
func checkDeployIn(ctx context.Context, t *testing.T, m *nspawn.Machine, host, cur string) {
	t.Helper()
	secrets := filepath.Join(host, "deploy-secrets")
	if err := service.WriteSecrets(secrets); err != nil {
		t.Fatal(err)
	}
	settings := shim.Settings{
		BaseURL:      "https://bitpoll.example",
		AllowedHosts: []string{"bitpoll.example"},
		Database:     shim.Database{Engine: "sqlite", Path: "/tmp/deploy.sqlite3"},
		StaticRoot:   cur + "/" + install.StaticDir,
		MediaRoot:    "/tmp/deploy-media",
	}
	data, err := settings.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "deploy.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{shim.SettingsFileEnv + "=/srv/test/deploy.json", shim.SecretsDirEnv + "=/srv/test/deploy-secrets",
		// As root, Python would otherwise write bytecode into the store.
		"PYTHONDONTWRITEBYTECODE=1"}
	out, err := m.Command(ctx, env, "env", "-C", cur+"/"+install.AppDir, cur+"/"+install.VenvDir+"/bin/python", "manage.py", "check", "--deploy").CombinedOutput()
	if err != nil {
		t.Fatalf("manage.py check --deploy: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "System check identified no issues") {
		t.Errorf("manage.py check --deploy found issues, want none:\n%s", out)
	}
}
