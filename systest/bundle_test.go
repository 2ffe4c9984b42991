package systest

import (
	"context"
	"os"
	"os/exec"
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

// attemptsScript prints what the kernel counted, in this network
// namespace, of tries to reach anything: TCP connects begun, UDP
// datagrams sent (a DNS query to a resolver on loopback among them), and
// packets that found no route (a connect or a DNS query to anywhere
// else, which fails before a packet leaves).
const attemptsScript = `
snmp = open("/proc/net/snmp").read().splitlines()
n = {}
for head, vals in zip(snmp[::2], snmp[1::2]):
    proto = head.split(":")[0]
    for k, v in zip(head.split()[1:], vals.split()[1:]):
        n[proto + "." + k] = int(v)
for line in open("/proc/net/snmp6"):
    k, v = line.split()
    n[k] = int(v)
print(sum(n.get(k, 0) for k in ("Tcp.ActiveOpens", "Udp.OutDatagrams", "Ip.OutNoRoutes", "Udp6OutDatagrams", "Ip6OutNoRoutes")))
`

// TestBundleOffline makes an offline bundle of real Bitpoll 0.11.0 on the
// host (the wheels come from PyPI), then, in the trixie tree inside a
// network namespace of its own (only loopback, no route), installs it
// with Debian's Python 3.13 and serves it: GET / answers 200 with
// Bitpoll's page. The kernel's counters of that namespace prove that the
// install tried no connection and sent no DNS query; two controls in the
// same namespace, a connect and a name lookup, show that the counters see
// such tries.
func TestBundleOffline(t *testing.T) {
	rootfs := nspawn.Rootfs(t)
	mirror := testkit.BitpollMirror(t)
	idx := testkit.RealIndex(t)
	cli := testkit.BuildCLI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	src := testkit.ExportRelease(ctx, t, mirror, "0.11.0")
	lock := testkit.LockTree(ctx, t, idx, src, "0.11.0", "cp313-x86_64")
	host := t.TempDir()
	if err := os.Link(cli, filepath.Join(host, "bitpoll-install")); err != nil {
		copyFile(t, cli, filepath.Join(host, "bitpoll-install"))
	}
	lockPath := filepath.Join(t.TempDir(), "bitpoll.lock")
	if err := lockfile.WriteFile(lockPath, lock); err != nil {
		t.Fatal(err)
	}
	bundlePath := filepath.Join(host, "bitpoll.bundle")
	out, err := exec.CommandContext(ctx, cli, "--root", t.TempDir(), "bundle", "-o", bundlePath,
		"--lock", lockPath, "--app-source", src, "--target", "cp313-x86_64").CombinedOutput()
	if err != nil {
		t.Fatalf("bundle: %v\n%s", err, out)
	}
	fi, err := os.Stat(bundlePath)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("bundle: %s (%d MiB)", strings.TrimSpace(string(out)), fi.Size()>>20)

	port := testkit.FreePort(t)
	bpi := work + "/bitpoll-install --root " + work + "/tree"
	from := "--from-bundle " + work + "/bitpoll.bundle --python /usr/bin/python3"
	script := strings.Join([]string{
		"set -eu",
		"attempts() { python3 -c '" + attemptsScript + "'; }",
		`echo "attempts-start $(attempts)"`,
		`python3 -c 'import socket
try:
    socket.create_connection(("192.0.2.1", 443), timeout=5)
except OSError as e:
    print("control connect:", e)'`,
		`echo "attempts-after-connect $(attempts)"`,
		`python3 -c 'import socket
try:
    socket.getaddrinfo("pypi.org", 443)
except OSError as e:
    print("control lookup:", e)'`,
		`echo "attempts-after-lookup $(attempts)"`,
		bpi + " install " + from,
		`echo "attempts-after-install $(attempts)"`,
		bpi + " run --port " + strconv.Itoa(port) + " " + from + " & pid=$!",
		`python3 -c 'import sys, time, urllib.request
url = "http://127.0.0.1:" + sys.argv[1] + "/"
for i in range(600):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = r.read().decode()
            print("GET / ->", r.status, "bitpoll" if "Bitpoll" in body else "not bitpoll")
            break
    except OSError:
        time.sleep(0.5)
else:
    sys.exit("nothing answered on " + url)' ` + strconv.Itoa(port),
		`kill $pid; wait $pid || true`,
	}, "\n")
	o := nspawn.Options{Rootfs: rootfs, PrivateNetwork: true, Binds: []nspawn.Bind{{Host: host, Path: work, Writable: true}}}
	start := time.Now()
	out, err = nspawn.Output(ctx, o, "/bin/sh", "-c", script)
	t.Logf("offline install and run in %v:\n%s", time.Since(start).Round(time.Second), lastLines(string(out), 40))
	if err != nil {
		t.Fatalf("offline install: %v", err)
	}
	count := func(label string) int {
		m := regexp.MustCompile(`(?m)^` + label + ` (\d+)\r?$`).FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("no %q line in the output", label)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	start0, connect, lookup, installed := count("attempts-start"), count("attempts-after-connect"), count("attempts-after-lookup"), count("attempts-after-install")
	t.Logf("tries to reach the network, as the namespace's counters add them up: %d at the start, %d after the control connect, %d after the control lookup, %d after install --from-bundle",
		start0, connect, lookup, installed)
	if connect <= start0 || lookup <= connect {
		t.Fatalf("the counters did not see the controls (%d, then %d after a connect, %d after a lookup): they prove nothing", start0, connect, lookup)
	}
	if installed != lookup {
		t.Errorf("install --from-bundle made %d tries to reach the network (counters %d → %d), want none", installed-lookup, lookup, installed)
	}
	if !strings.Contains(string(out), "GET / -> 200 bitpoll") {
		t.Errorf("the offline install did not serve Bitpoll's page")
	}
	if !strings.Contains(string(out), "generation 1 is now current") {
		t.Errorf("install printed no new generation")
	}
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
