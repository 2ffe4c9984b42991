package unitgen

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
)

// analyzer is one systemd-analyze: the host's, or the one in the Debian
// trixie tree of scripts/rootfs.sh, run through that tree's loader.
type analyzer struct {
	name string
	argv []string
}

// analyzers finds every systemd-analyze there is; the test skips when it
// finds none and logs the ones it misses. With CI=true a missing one fails
// the test.
func analyzers(t *testing.T) []analyzer {
	t.Helper()
	missing := func(msg string) {
		t.Helper()
		if testenv.CI() {
			t.Errorf("missing prerequisite (CI=true): %s", msg)
		} else {
			t.Log(msg)
		}
	}
	var out []analyzer
	if p, err := exec.LookPath("systemd-analyze"); err == nil {
		out = append(out, analyzer{"host", []string{p}})
	} else {
		missing("no systemd-analyze on PATH: the host's systemd is not checked")
	}
	root := os.Getenv("BITPOLL_ROOTFS")
	if root == "" {
		if home, err := os.UserHomeDir(); err == nil {
			root = filepath.Join(home, ".cache", "bitpoll-install-test", "rootfs-trixie")
		}
	}
	loader := filepath.Join(root, "lib64", "ld-linux-x86-64.so.2")
	bin := filepath.Join(root, "usr", "bin", "systemd-analyze")
	_, lerr := os.Stat(loader)
	_, berr := os.Stat(bin)
	switch {
	case runtime.GOARCH != "amd64":
		t.Logf("the rootfs analyzer runs only on amd64, not %s", runtime.GOARCH)
	case lerr != nil || berr != nil:
		missing(fmt.Sprintf("no rootfs at %q (set BITPOLL_ROOTFS to the tree scripts/rootfs.sh prints): the trixie systemd is not checked", root))
	default:
		lib := filepath.Join(root, "usr", "lib", "x86_64-linux-gnu")
		out = append(out, analyzer{"rootfs", []string{loader, "--library-path", lib + ":" + filepath.Join(lib, "systemd"), bin}})
	}
	if len(out) == 0 {
		testenv.Skip(t, "no systemd-analyze found, neither on PATH nor in BITPOLL_ROOTFS: install systemd or build the rootfs with scripts/rootfs.sh")
	}
	return out
}

var overall = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+) (\S+)`)

// score runs "systemd-analyze security --offline=true" on the service file
// and returns its version, the overall exposure and the full report.
func (a analyzer) score(t *testing.T, file string) (version string, exposure float64, report string) {
	t.Helper()
	run := func(args ...string) string {
		cmd := exec.Command(a.argv[0], append(a.argv[1:], args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s systemd-analyze %s: %v\n%s%s", a.name, strings.Join(args, " "), err, out, stderr.Bytes())
		}
		return string(out)
	}
	version, _, _ = strings.Cut(run("--version"), "\n")
	report = run("security", "--offline=true", "--no-pager", file)
	m := overall.FindStringSubmatch(report)
	if m == nil {
		t.Fatalf("%s: no overall exposure in the report:\n%s", version, report)
	}
	exposure, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s: exposure %q is not a number", version, m[1])
	}
	return version, exposure, report
}

// writeService renders s and writes bitpoll.service into a fresh directory.
func writeService(t *testing.T, s Spec) string {
	t.Helper()
	units, err := Render(s)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, u := range units {
		data, err := u.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, u.Name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, ServiceTemplate)
}

// TestSecuritySafe is the security bar: the default units are rated SAFE,
// below 1.0, by every systemd-analyze at hand.
func TestSecuritySafe(t *testing.T) {
	specs := map[string]Spec{"default": exampleSpec()}
	relay := exampleSpec()
	relay.OutboundAllow = []netip.Prefix{netip.MustParsePrefix("192.0.2.25/32"), netip.MustParsePrefix("2001:db8::/64")}
	specs["mail relay and CalDAV allowed"] = relay
	unix := exampleSpec()
	unix.Listen, unix.SocketGroup = "/run/bitpoll/bitpoll.sock", "www-data"
	specs["unix socket"] = unix
	for _, a := range analyzers(t) {
		for name, s := range specs {
			version, exposure, report := a.score(t, writeService(t, s))
			t.Logf("%s, %s: exposure %.1f", version, name, exposure)
			if exposure >= 1.0 {
				t.Errorf("%s: %s: systemd-analyze security = %.1f, want below 1.0 (SAFE)\n%s", version, name, exposure, report)
			}
		}
	}
}

// TestSecurityOutboundOpen shows what opening outbound costs: the score
// rises, and the report names the missing allow-list.
func TestSecurityOutboundOpen(t *testing.T) {
	open := exampleSpec()
	open.OutboundAny = true
	for _, a := range analyzers(t) {
		version, safe, _ := a.score(t, writeService(t, exampleSpec()))
		_, exposure, report := a.score(t, writeService(t, open))
		t.Logf("%s: exposure %.1f with outbound open, %.1f without", version, exposure, safe)
		if exposure <= safe {
			t.Errorf("%s: exposure with outbound open = %.1f, want above the default %.1f", version, exposure, safe)
		}
		if !strings.Contains(report, "does not define an IP address allow list") {
			t.Errorf("%s: report with outbound open does not say %q:\n%s", version, "does not define an IP address allow list", report)
		}
	}
}

// TestSecurityPrivateNetwork is the bar for a config that needs no
// network: with PrivateNetwork=true the service rates 0.6 or lower, the
// report counts the directive as met, and the default units, which keep
// the network, rate above it.
func TestSecurityPrivateNetwork(t *testing.T) {
	private := exampleSpec()
	private.PrivateNetwork = true
	for _, a := range analyzers(t) {
		version, exposure, report := a.score(t, writeService(t, private))
		_, withNet, _ := a.score(t, writeService(t, exampleSpec()))
		t.Logf("%s: exposure %.1f with PrivateNetwork=true, %.1f without", version, exposure, withNet)
		if exposure > 0.6 {
			t.Errorf("%s: systemd-analyze security with PrivateNetwork=true = %.1f, want 0.6 or lower\n%s", version, exposure, report)
		}
		if exposure >= withNet {
			t.Errorf("%s: exposure with PrivateNetwork=true = %.1f, want below the %.1f of the units with network", version, exposure, withNet)
		}
		if !regexp.MustCompile(`(?m)^✓ PrivateNetwork=`).MatchString(report) {
			t.Errorf("%s: the report does not count PrivateNetwork= as met:\n%s", version, report)
		}
	}
}
