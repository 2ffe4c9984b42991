package systest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/internal/nspawn"
	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
)

// TestServiceFixture puts our fixture project into service in a booted
// Debian trixie machine; it runs wherever the root file system is, CI
// included.
func TestServiceFixture(t *testing.T) {
	rootfs := nspawn.Rootfs(t)
	testkit.NeedNetwork(t)
	l := testkit.LockFixture(t, "cp313-x86_64", "gunicorn==27.0.1", "whitenoise==6.12.0")
	serviceCase(t, rootfs, l, testkit.FixtureApp(), "")
}

// TestServiceBitpoll does the same with real Bitpoll 0.11.0 and creates a
// poll through its form.
func TestServiceBitpoll(t *testing.T) {
	rootfs := nspawn.Rootfs(t)
	mirror := testkit.BitpollMirror(t)
	idx := testkit.RealIndex(t)
	ctx := context.Background()
	src := testkit.ExportRelease(ctx, t, mirror, "0.11.0")
	serviceCase(t, rootfs, testkit.LockTree(ctx, t, idx, src, "0.11.0", "cp313-x86_64"), src, "service-0-11-0")
}

// serviceCase boots a machine, runs `install` as root in it and checks
// what an admin relies on: the socket and the service active, 200 from
// the host, a restart after SIGKILL and after a reboot, gunicorn's log in
// the journal, the process confined, the secrets and the store out of the
// service's reach, and a bad config refused with the service untouched.
// With a poll slug it also creates a poll through Bitpoll's form.
func serviceCase(t *testing.T, rootfs string, l *lockfile.Lock, src, pollSlug string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	host := t.TempDir()
	if err := os.Rename(testkit.BuildCLI(t), filepath.Join(host, "bitpoll-install")); err != nil {
		t.Fatal(err)
	}
	if err := lockfile.WriteFile(filepath.Join(host, "bitpoll.lock"), l); err != nil {
		t.Fatal(err)
	}
	m := nspawn.Boot(ctx, t, nspawn.Options{Rootfs: rootfs, Binds: []nspawn.Bind{
		{Host: host, Path: "/srv/test"},
		{Host: src, Path: appDir},
	}}, "bitpoll-test")

	port := testkit.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	writeConfig(t, m, fmt.Sprintf("base_url = %q\nallowed_hosts = [\"127.0.0.1\", \"localhost\"]\n\n[listen]\naddress = \"127.0.0.1\"\nport = %d\n", base, port))
	install := []string{"/srv/test/bitpoll-install", "install", "--lock", "/srv/test/bitpoll.lock", "--app-source", appDir, "--python", "/usr/bin/python3"}

	start := time.Now()
	out, err := m.Exec(ctx, install...)
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	t.Logf("install (build, units, migrate, start): %v\n%s", time.Since(start).Round(time.Millisecond), out)
	if !strings.Contains(string(out), "bitpoll@1.service is running") {
		t.Errorf("install printed %q, want it to report the running service", out)
	}
	for _, u := range []string{"bitpoll.socket", firstGen} {
		if state := systemctl(ctx, t, m, "is-active", u); state != "active" {
			t.Errorf("%s is %q after install, want active", u, state)
		}
	}
	get200(t, base)
	if pollSlug != "" {
		testkit.CreatePoll(t, base, pollSlug, "A poll served by systemd")
	}

	// manage runs as the service user with the service's database.
	if out, err := m.Exec(ctx, "/srv/test/bitpoll-install", "manage", "showmigrations", "sessions"); err != nil || !strings.Contains(string(out), "[X] 0001_initial") {
		t.Errorf("manage showmigrations sessions = %v, want the migration applied by the service:\n%s", err, out)
	}

	// The config needs no network (SQLite, no mail, no allow-list): the
	// service runs in a network namespace of its own and has served the
	// requests above through the socket systemd passed in.
	checkPrivateNetwork(ctx, t, m, mainPID(ctx, t, m))
	score, err := m.Exec(ctx, "systemd-analyze", "security", "--offline=true", "/etc/systemd/system/bitpoll@.service")
	t.Logf("systemd-analyze security: %s", lastLine(score))
	if v := overallExposure.FindSubmatch(score); v == nil || string(v[1]) > "0.6" {
		t.Errorf("systemd-analyze security rates bitpoll.service %q (%v), want 0.6 or lower with PrivateNetwork=yes", lastLine(score), err)
	}

	// Restarted to the first 200.
	start = time.Now()
	systemctl(ctx, t, m, "restart", firstGen)
	if err := testkit.WaitHTTP(ctx, base+"/", time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart to first answer: %v", time.Since(start).Round(time.Millisecond))

	pid := mainPID(ctx, t, m)
	checkConfined(ctx, t, m, pid)

	// SIGKILL of the main process: systemd starts it again.
	if _, err := m.Exec(ctx, "sh", "-c", "kill -9 "+strconv.Itoa(pid)); err != nil {
		t.Fatal(err)
	}
	waitNewPID(ctx, t, m, pid)
	get200(t, base)

	journal, err := m.Exec(ctx, "journalctl", "-u", firstGen, "--no-pager", "-o", "cat")
	if err != nil || !regexp.MustCompile(`Booting worker with pid: \d+`).Match(journal) || !strings.Contains(string(journal), "Listening at:") {
		t.Errorf("the journal of bitpoll@1.service lacks gunicorn's start-up lines (%v):\n%s", err, journal)
	}

	// A bad config is refused before anything changes.
	before := mainPID(ctx, t, m)
	good, err := os.ReadFile(m.Upper("/etc/bitpoll/bitpoll.toml"))
	if err != nil {
		t.Fatal(err)
	}
	writeConfig(t, m, strings.Replace(string(good), `allowed_hosts = ["127.0.0.1", "localhost"]`, "allowed_hosts = []", 1))
	out, err = m.Exec(ctx, install...)
	if err == nil || !strings.Contains(string(out), "allowed_hosts") {
		t.Errorf("install with allowed_hosts = [] = %v, want a refusal naming allowed_hosts; output:\n%s", err, out)
	}
	if after := mainPID(ctx, t, m); after != before {
		t.Errorf("the refused install changed the service: main PID %d, was %d", after, before)
	}
	get200(t, base)
	writeConfig(t, m, string(good))

	// A reboot: the socket and the service come back by themselves.
	if err := m.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	if err := testkit.WaitHTTP(ctx, base+"/", 2*time.Minute); err != nil {
		t.Fatalf("after a reboot: %v", err)
	}
	get200(t, base)
	if state := systemctl(ctx, t, m, "is-active", firstGen); state != "active" {
		t.Errorf("bitpoll@1.service is %q after a reboot and a request, want active", state)
	}
}

// firstGen is the unit that serves the first generation.
const firstGen = "bitpoll@1.service"

func writeConfig(t *testing.T, m *nspawn.Machine, text string) {
	t.Helper()
	path := m.Upper("/etc/bitpoll/bitpoll.toml")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func systemctl(ctx context.Context, t *testing.T, m *nspawn.Machine, args ...string) string {
	t.Helper()
	out, _ := m.Command(ctx, nil, append([]string{"systemctl"}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out))
}

func mainPID(ctx context.Context, t *testing.T, m *nspawn.Machine) int {
	t.Helper()
	s := systemctl(ctx, t, m, "show", "-p", "MainPID", "--value", firstGen)
	pid, err := strconv.Atoi(s)
	if err != nil || pid == 0 {
		t.Fatalf("MainPID of %s = %q, want a running process", firstGen, s)
	}
	return pid
}

func waitNewPID(ctx context.Context, t *testing.T, m *nspawn.Machine, old int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		s := systemctl(ctx, t, m, "show", "-p", "MainPID", "--value", firstGen)
		if pid, _ := strconv.Atoi(s); pid != 0 && pid != old {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not come back within a minute of SIGKILL to %d", firstGen, old)
}

func get200(t *testing.T, base string) {
	t.Helper()
	if err := testkit.WaitHTTP(context.Background(), base+"/", time.Minute); err != nil {
		t.Fatal(err)
	}
	if status, body := testkit.FetchPage(t, &http.Client{Timeout: 30 * time.Second}, base+"/"); status != http.StatusOK {
		t.Fatalf("GET %s/ = %d, want 200:\n%s", base, status, body)
	}
}

// checkConfined reads the service's /proc status and tries, as the
// service's own user in its own namespaces, to read the secrets and to
// write to the store.
func checkConfined(ctx context.Context, t *testing.T, m *nspawn.Machine, pid int) {
	t.Helper()
	status, err := m.Exec(ctx, "cat", fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NoNewPrivs:\t1", "Seccomp:\t2", "CapEff:\t0000000000000000"} {
		if !strings.Contains(string(status), want) {
			t.Errorf("/proc/%d/status lacks %q:\n%s", pid, want, status)
		}
	}
	uid := regexp.MustCompile(`(?m)^Uid:\t(\d+)`).FindSubmatch(status)
	gid := regexp.MustCompile(`(?m)^Gid:\t(\d+)`).FindSubmatch(status)
	if uid == nil || gid == nil || string(uid[1]) == "0" {
		t.Fatalf("the service runs as uid %q, want a dynamic non-root user:\n%s", uid, status)
	}
	as := []string{"nsenter", "-t", strconv.Itoa(pid), "-a", "-S", string(uid[1]), "-G", string(gid[1])}
	if out, err := m.Exec(ctx, append(as, "cat", "/etc/bitpoll/secrets/secret_key")...); err == nil {
		t.Errorf("the service user read /etc/bitpoll/secrets/secret_key, want it out of reach:\n%s", out)
	}
	if out, err := m.Exec(ctx, append(as, "touch", "/opt/bitpoll/written-by-the-service")...); err == nil {
		t.Errorf("the service user wrote to /opt/bitpoll, want it read-only:\n%s", out)
	}
	// The service itself does see its credential and its state directory.
	if _, err := m.Exec(ctx, append(as, "touch", "/var/lib/bitpoll/written-by-the-service")...); err != nil {
		t.Errorf("the service user cannot write its state directory: %v", err)
	}
}

// overallExposure is systemd-analyze's verdict; its one-decimal numbers
// below 10 compare as strings.
var overallExposure = regexp.MustCompile(`Overall exposure level for \S+: ([0-9]\.[0-9]) SAFE`)

// checkPrivateNetwork checks that the unit asks for PrivateNetwork=yes
// and that the process pid, which serves, has a network of its own with
// nothing but a loopback device: the listening socket is passed in.
func checkPrivateNetwork(ctx context.Context, t *testing.T, m *nspawn.Machine, pid int) {
	t.Helper()
	if got := systemctl(ctx, t, m, "show", "-p", "PrivateNetwork", "--value", firstGen); got != "yes" {
		t.Errorf("%s PrivateNetwork = %q, want yes for a config that needs no network", firstGen, got)
	}
	own, err := m.Exec(ctx, "readlink", fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		t.Fatal(err)
	}
	host, err := m.Exec(ctx, "readlink", "/proc/1/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(own)) == strings.TrimSpace(string(host)) {
		t.Errorf("the service shares the machine's network namespace %s, want one of its own", host)
	}
	dev, err := m.Exec(ctx, "cat", fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		t.Fatal(err)
	}
	var ifaces []string
	for _, l := range strings.Split(string(dev), "\n") {
		if name, _, ok := strings.Cut(l, ":"); ok {
			ifaces = append(ifaces, strings.TrimSpace(name))
		}
	}
	if strings.Join(ifaces, ",") != "lo" {
		t.Errorf("the service's network devices are %q, want only lo:\n%s", ifaces, dev)
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
