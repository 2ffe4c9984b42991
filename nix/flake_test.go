package nix

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/pyspec/wheeltag"
)

// flakeCopy is the repository's files (tracked and untracked, not ignored)
// in a directory of their own, plus a stand-in app tree: a path: flake
// sees them all, and nothing of GitHub is needed.
type flakeCopy struct {
	dir, app string
}

var (
	copyOnce sync.Once
	copyVal  flakeCopy
	copyErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if copyVal.dir != "" {
		os.RemoveAll(filepath.Dir(copyVal.dir))
	}
	os.Exit(code)
}

func repoCopy(t *testing.T) flakeCopy {
	t.Helper()
	copyOnce.Do(func() { copyVal, copyErr = makeCopy(repoRoot(t)) })
	if copyErr != nil {
		t.Fatal(copyErr)
	}
	return copyVal
}

func makeCopy(root string) (flakeCopy, error) {
	tmp, err := os.MkdirTemp("", "bitpoll-flake-")
	if err != nil {
		return flakeCopy{}, err
	}
	c := flakeCopy{dir: filepath.Join(tmp, "flake"), app: filepath.Join(tmp, "app")}
	list, err := gitOut(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	if err != nil {
		return c, err
	}
	for _, rel := range strings.Split(strings.TrimSuffix(list, "\x00"), "\x00") {
		src := filepath.Join(root, rel)
		fi, err := os.Lstat(src)
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the work tree, or a symlink
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return c, err
		}
		dst := filepath.Join(c.dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return c, err
		}
		if err := os.WriteFile(dst, data, fi.Mode().Perm()); err != nil {
			return c, err
		}
	}
	// The stand-in for the Bitpoll source: enough to evaluate the package.
	for name, text := range map[string]string{
		"manage.py":           "import sys\n",
		"bitpoll/settings.py": "from .settings_local import *  # noqa\n",
	} {
		p := filepath.Join(c.app, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return c, err
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			return c, err
		}
	}
	return c, nil
}

// flake runs a nix command on the copy, with nixpkgs and the app source
// overridden; args may hold "FLAKE" for the flake reference.
func flake(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	out, _, err := flakeLog(t, args...)
	return out, err
}

// flakeLog is flake that also returns nix's log (stderr).
func flakeLog(t *testing.T, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	return flakeApp(t, repoCopy(t).app, args...)
}

// flakeApp is flakeLog with app as the bitpoll-src input.
func flakeApp(t *testing.T, app string, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	n := newNix226(t)
	c := repoCopy(t)
	ref := "path:" + c.dir
	var full []string
	for _, a := range args {
		full = append(full, strings.ReplaceAll(a, "FLAKE", ref))
	}
	full = append(full, "--override-input", "nixpkgs", n.nixpkgs,
		"--override-input", "bitpoll-src", "path:"+app, "--no-write-lock-file")
	start := time.Now()
	stdout, stderr, err = n.RunLog(withTimeout(t, 10*time.Minute), c.dir, full...)
	t.Logf("nix %s: %.1fs", args[0]+" "+args[1], time.Since(start).Seconds())
	return stdout, stderr, err
}

func TestFlakeShow(t *testing.T) {
	out, err := flake(t, "flake", "show", "--json", "FLAKE")
	if err != nil {
		t.Fatal(err)
	}
	var show map[string]any
	if err := json.Unmarshal(out, &show); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		"packages.x86_64-linux.bitpoll", "packages.x86_64-linux.bitpoll-install", "packages.x86_64-linux.default",
		"nixosModules.default", "devShells.x86_64-linux.default",
		"apps.x86_64-linux.default", "apps.x86_64-linux.bitpoll-install", "formatter.x86_64-linux",
		"checks.x86_64-linux.vm", "checks.x86_64-linux.module-units", "nixosConfigurations.example",
	} {
		var v any = show
		for _, k := range strings.Split(path, ".") {
			m, _ := v.(map[string]any)
			v = m[k]
		}
		if v == nil {
			t.Errorf("nix flake show: no %s", path)
		}
	}
	// Only the systems the committed lock serves: one per CPU of its
	// targets, as lockfile reads them.
	want := lockSystems(t)
	for _, output := range []string{"packages", "checks", "devShells", "apps", "formatter"} {
		m, _ := show[output].(map[string]any)
		var got []string
		for system := range m {
			got = append(got, system)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("nix flake show: %s has systems %q, want those of the lock's targets %q", output, got, want)
		}
	}
}

// TestFlakeCheck runs nix flake check --no-build --all-systems, which
// evaluates every output of every system the flake advertises and
// instantiates every derivation, the VM test's driver included, and
// checks from its log that it reached each of them.
func TestFlakeCheck(t *testing.T) {
	_, log, err := flakeLog(t, "flake", "check", "--no-build", "--all-systems", "FLAKE")
	if err != nil {
		t.Fatal(err)
	}
	drvs, checked := parseCheckLog(string(log))
	// Every system the committed lock serves evaluates, aarch64-linux
	// (where libsass is built from its marked sdist) as well as x86_64-linux.
	systems := lockSystems(t)
	if !slices.Contains(systems, "aarch64-linux") || !slices.Contains(systems, "x86_64-linux") {
		t.Errorf("the committed lock serves %q, want x86_64-linux and aarch64-linux", systems)
	}
	for _, sys := range systems {
		for attr, suffix := range map[string]string{
			"packages.SYS.bitpoll":         "-bitpoll-0.11.0.drv",
			"packages.SYS.bitpoll-install": "-bitpoll-install-0.1.0.drv",
			"packages.SYS.default":         "-bitpoll-0.11.0.drv",
			"devShells.SYS.default":        ".drv",
			"formatter.SYS":                ".drv",
			"checks.SYS.bitpoll":           "-bitpoll-0.11.0.drv",
			"checks.SYS.bitpoll-install":   "-bitpoll-install-0.1.0.drv",
			"checks.SYS.module-units":      "-bitpoll-example-units.drv",
			"checks.SYS.vm":                "-vm-test-run-bitpoll.drv",
		} {
			attr = strings.Replace(attr, "SYS", sys, 1)
			if !strings.HasPrefix(drvs[attr], "/nix/store/") || !strings.HasSuffix(drvs[attr], suffix) {
				t.Errorf("nix flake check: derivation %s evaluated to %q, want a store path ending in %q", attr, drvs[attr], suffix)
			}
		}
	}
	for _, what := range []string{"NixOS module 'nixosModules.default'", "NixOS configuration 'nixosConfigurations.example'",
		"app 'apps.x86_64-linux.default'", "app 'apps.x86_64-linux.bitpoll-install'"} {
		if !slices.Contains(checked, what) {
			t.Errorf("nix flake check did not check %s; it checked %q", what, checked)
		}
	}
	if t.Failed() {
		t.Logf("nix flake check log:\n%s", log)
	}
	for _, attr := range []string{"apps.x86_64-linux.default.program", "apps.x86_64-linux.bitpoll-install.program"} {
		if out, err := flake(t, "eval", "--raw", "FLAKE#"+attr); err != nil || !strings.HasSuffix(string(out), "/bin/bitpoll-install") {
			t.Errorf("%s = %s, %v, want the installer's bin/bitpoll-install", attr, out, err)
		}
	}
}

// lockSystems is the sorted Nix systems of the committed lock's targets,
// one per CPU, as lockfile reads them.
func lockSystems(t *testing.T) []string {
	t.Helper()
	l, err := lockfile.ReadFile(filepath.Join(repoRoot(t), "bitpoll.lock"))
	if err != nil {
		t.Fatal(err)
	}
	targets, err := l.ParsedTargets()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tg := range targets {
		if s := tg.Arch + "-linux"; !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// parseCheckLog reads the log of nix flake check: the derivation each
// checked attribute evaluated to, and every other thing it checked
// ("NixOS module 'nixosModules.default'").
func parseCheckLog(log string) (drvs map[string]string, checked []string) {
	drvs = map[string]string{}
	var current string
	for _, line := range strings.Split(log, "\n") {
		if attr, ok := strings.CutPrefix(line, "checking derivation "); ok {
			current = strings.TrimSuffix(attr, "...")
		} else if drv, ok := strings.CutPrefix(line, "derivation evaluated to "); ok && current != "" {
			drvs[current] = drv
			current = ""
		} else if what, ok := strings.CutPrefix(line, "checking "); ok {
			checked = append(checked, strings.TrimSuffix(what, "..."))
		}
	}
	return drvs, checked
}

// TestExampleUnits renders the README example's units and checks the
// lines the example's options decide.
func TestExampleUnits(t *testing.T) {
	want := map[string][]string{
		"bitpoll.socket":          {"ListenStream=127.0.0.1:8080", "WantedBy=sockets.target"},
		"bitpoll.service":         {"LoadCredential=secret_key:/etc/bitpoll/secret", "LoadCredential=field_encryption_key:/etc/bitpoll/secrets/field_encryption_key", "Type=notify", "ProtectSystem=strict", "SystemCallFilter=@system-service", "SystemCallFilter=~@privileged @resources", "Requires=bitpoll.socket bitpoll-migrate.service"},
		"bitpoll-migrate.service": {"Type=oneshot", "DynamicUser=true", "User=bitpoll", "StateDirectory=bitpoll"},
	}
	for unit, lines := range want {
		out, err := flake(t, "eval", "--raw", fmt.Sprintf("FLAKE#nixosConfigurations.example.config.systemd.units.%q.text", unit))
		if err != nil {
			t.Fatal(err)
		}
		text := string(out)
		for _, l := range lines {
			if !slices.Contains(strings.Split(text, "\n"), l) {
				t.Errorf("unit %s has no line %q:\n%s", unit, l, text)
			}
		}
	}
	// The settings the JSON file is rendered from: the example's host and
	// the package's static files.
	out, err := flake(t, "eval", "--json", "FLAKE#nixosConfigurations.example.config.services.bitpoll.settings")
	if err != nil {
		t.Fatal(err)
	}
	var settings map[string]any
	if err := json.Unmarshal(out, &settings); err != nil {
		t.Fatalf("settings file %s: %v", out, err)
	}
	if got := fmt.Sprint(settings["allowed_hosts"]); got != "[bitpoll.company.com]" {
		t.Errorf("settings allowed_hosts = %s, want [bitpoll.company.com]", got)
	}
	if got, _ := settings["static_root"].(string); !strings.HasSuffix(got, "-bitpoll-0.11.0/share/bitpoll/static") {
		t.Errorf("settings static_root = %q, want the package's share/bitpoll/static", got)
	}
}

// TestAssertions evaluates the example with a bad option and checks the
// assertion's message.
func TestAssertions(t *testing.T) {
	tests := []struct {
		module, want string
	}{
		{`{ lib, ... }: { services.bitpoll.allowedHosts = lib.mkForce [ ]; }`, "services.bitpoll.allowedHosts is empty"},
		{`{ services.bitpoll.database.createLocally = true; }`, "needs the NixOS PostgreSQL module"},
		{`{ services.bitpoll.database.url = "postgresql://bitpoll:secret@db.example.org/bitpoll"; }`, "services.bitpoll.database.url contains a password"},
		{`{ services.bitpoll.database.passwordFile = "/etc/bitpoll/db"; }`, "services.bitpoll.database.passwordFile is for PostgreSQL"},
		{`{ services.bitpoll.database.type = "postgresql"; }`, "Set services.bitpoll.database.url, as database.url in bitpoll.toml"},
		{`{ services.bitpoll.outboundAny = true; }`, `Write outboundAllow = [ "any" ]`},
		{`{ services.bitpoll.outboundAllow = [ "any" "192.0.2.25" ]; }`, `"any" opens outbound to everything`},
		{`{ services.bitpoll.listenAddress = "/run/bitpoll.sock"; }`, "set listenSocket to it"},
		{`{ services.bitpoll.listenSocket = "/run//bitpoll.sock"; }`, "services.bitpoll.listenSocket \"/run//bitpoll.sock\" is not clean"},
		{`{ services.bitpoll.nginx.enable = true; }`, "needs the NixOS nginx module"},
		{`{ services.bitpoll.settings.django.SECRET_KEY = "x"; }`, "use secretKeyFile"},
		{`{ services.bitpoll.listenAddress = "localhost"; }`, `services.bitpoll.listenAddress "localhost" is not an IP address, and systemd's ListenStream= does not resolve names`},
		{`{ services.bitpoll.outboundAllow = [ "192.0.2.25" "mail.example.org" ]; }`, `services.bitpoll.outboundAllow: "mail.example.org" is not an IP address or prefix`},
		{`{ services.bitpoll.outboundAllow = [ "::/0" ]; }`, `write [ "any" ] to open outbound`},
		{`{ services.bitpoll.secretKeyFile = "/etc/bitpoll/my secret"; }`, "services.bitpoll.secretKeyFile"},
		{`{ services.bitpoll.settings.static_root = "/srv/my static"; }`, `services.bitpoll.settings.static_root "/srv/my static" is not a plain absolute path`},
		{`{ services.bitpoll.listenSocketGroup = "nginx"; }`, "services.bitpoll.listenSocketGroup is only used with listenSocket"},
		{`{ imports = [ (` + withNginx + `) ]; services.bitpoll.nginx = { enable = true; hostName = "poll.example.org"; }; }`, "add it to allowedHosts"},
	}
	for _, tt := range tests {
		apply := fmt.Sprintf("c: (c.extendModules { modules = [ (%s) ]; }).config.system.build.toplevel.drvPath", tt.module)
		_, err := flake(t, "eval", "--raw", "FLAKE#nixosConfigurations.example", "--apply", apply)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("example + %s: error = %v, want one containing %q", tt.module, err, tt.want)
		}
	}
}

// TestPackageWheels instantiates the package and compares the wheels its
// derivation closure fetches with lockfile's selection for the target.
func TestPackageWheels(t *testing.T) {
	for _, sys := range lockSystems(t) {
		t.Run(sys, func(t *testing.T) { packageFiles(t, sys) })
	}
}

// packageFiles checks that system's bitpoll package fetches exactly the
// files lockfile selects for its target: wheels, and on aarch64-linux
// libsass's marked sdist with the build-only wheels it builds with.
func packageFiles(t *testing.T, sys string) {
	arch := strings.TrimSuffix(sys, "-linux")
	out, err := flake(t, "eval", "--raw", "FLAKE#packages."+sys+".bitpoll.drvPath")
	if err != nil {
		t.Fatal(err)
	}
	drv := strings.TrimSpace(string(out))
	out, err = flake(t, "eval", "--raw", "FLAKE#packages."+sys+".bitpoll.python.python.pythonVersion")
	if err != nil {
		t.Fatal(err)
	}
	pyVersion := strings.TrimSpace(string(out))

	n := newNix226(t)
	out, err = n.Run(withTimeout(t, 5*time.Minute), t.TempDir(), "derivation", "show", "--recursive", drv)
	if err != nil {
		t.Fatal(err)
	}
	var drvs map[string]struct {
		Env     map[string]string `json:"env"`
		Outputs map[string]struct {
			Hash     string `json:"hash"`
			HashAlgo string `json:"hashAlgo"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(out, &drvs); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{} // url -> sha256 of the fixed output
	for _, d := range drvs {
		// fetchurl uses structured attributes: its urls are in __json.
		var attrs struct {
			URLs []string `json:"urls"`
		}
		if j, ok := d.Env["__json"]; ok {
			if err := json.Unmarshal([]byte(j), &attrs); err != nil {
				t.Fatal(err)
			}
		} else if u := d.Env["urls"]; u != "" {
			attrs.URLs = strings.Fields(u)
		}
		for _, url := range attrs.URLs {
			if strings.HasPrefix(url, "https://files.pythonhosted.org/") {
				if out := d.Outputs["out"]; out.HashAlgo == "sha256" || out.HashAlgo == "r:sha256" {
					got[url] = out.Hash
				}
			}
		}
	}

	l, err := lockfile.ReadFile(filepath.Join(repoRoot(t), "bitpoll.lock"))
	if err != nil {
		t.Fatal(err)
	}
	g, _ := wheeltag.ParseGlibc(l.Glibc)
	tg, err := wheeltag.ParseTarget("cp3"+strings.TrimPrefix(pyVersion, "3.")+"-"+arch, g)
	if err != nil {
		t.Fatal(err)
	}
	sel, err := l.ForTarget(tg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	sdists := 0
	for _, s := range sel {
		want[s.File.URL] = s.File.SHA256
		if s.IsSdist {
			sdists++
		}
	}
	if sdists > 0 {
		// The build-only packages the sdists build with, as install
		// fetches them.
		for i := range l.Packages {
			if p := &l.Packages[i]; p.BuildOnly {
				if s, ok := p.Pick(tg); ok {
					want[s.File.URL] = s.File.SHA256
				}
			}
		}
	}
	if arch == "aarch64" && sdists == 0 {
		t.Errorf("lockfile selects no sdist for %s; want libsass's marked sdist", tg)
	}
	for url, sha := range want {
		if got[url] != sha {
			t.Errorf("%s: the derivation fetches %s with sha256 %q, want %q", drv, url, got[url], sha)
		}
	}
	for url := range got {
		if _, ok := want[url]; !ok {
			t.Errorf("%s: the derivation fetches %s, which lockfile does not select for %s", drv, url, tg)
		}
	}
	t.Logf("%s: %d files (%d sdists) for %s, as the lock selects", drv, len(got), sdists, tg)
}

// TestDevShell checks the dev shell's environment: Go and the lock's
// Python environment are on it.
func TestDevShell(t *testing.T) {
	out, err := flake(t, "eval", "--json", "FLAKE#devShells.x86_64-linux.default.nativeBuildInputs", "--apply", "map (p: p.name)")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	if err := json.Unmarshal(out, &names); err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(names, " ")
	for _, want := range []string{"go-1.", "python3-3.", "bitpoll-dev"} {
		if !strings.Contains(joined, want) {
			t.Errorf("dev shell packages %v: none named %s*", names, want)
		}
	}
}

// TestNixParses parses every .nix file of the repository with the Nix on
// the PATH (Debian's nix-bin in CI).
func TestNixParses(t *testing.T) {
	bin := nixInstantiate(t)
	var files []string
	root := repoRoot(t)
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" && p != root) {
			return filepath.SkipDir
		}
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".nix") {
			files = append(files, p)
		}
		return nil
	})
	if len(files) < 8 {
		t.Fatalf("found %d .nix files (%v), want flake.nix and nix/*.nix", len(files), files)
	}
	for _, f := range files {
		cmd := exec.Command(bin, "--parse", f)
		cmd.Env = isolatedEnv(t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil {
			rel, _ := filepath.Rel(root, f)
			t.Errorf("nix-instantiate --parse %s: %v\n%s", rel, err, out)
		}
	}
}

// TestParseCheckLog reads a recorded log of nix flake check, and that log
// cut where the VM test used to fail: a derivation that did not evaluate
// must not count as checked.
func TestParseCheckLog(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "checklog", "nix-2.26.log"))
	if err != nil {
		t.Fatal(err)
	}
	full := string(data)
	cut, _, _ := strings.Cut(full, "derivation evaluated to /nix/store/00000000000000000000000000000000-vm-test-run-bitpoll.drv")
	cut += "error:\n       … while checking the derivation 'checks.x86_64-linux.vm'\n"
	tests := []struct {
		name, log, attr, want string
	}{
		{"full", full, "checks.x86_64-linux.vm", "/nix/store/00000000000000000000000000000000-vm-test-run-bitpoll.drv"},
		{"full", full, "packages.x86_64-linux.bitpoll-install", "/nix/store/00000000000000000000000000000000-bitpoll-install-0.1.0.drv"},
		{"cut", cut, "checks.x86_64-linux.vm", ""},
		{"cut", cut, "checks.x86_64-linux.module-units", "/nix/store/00000000000000000000000000000000-bitpoll-example-units.drv"},
	}
	for _, tt := range tests {
		drvs, _ := parseCheckLog(tt.log)
		if got := drvs[tt.attr]; got != tt.want {
			t.Errorf("parseCheckLog(%s)[%q] = %q, want %q", tt.name, tt.attr, got, tt.want)
		}
	}
	_, checked := parseCheckLog(full)
	if want := "NixOS configuration 'nixosConfigurations.example'"; !slices.Contains(checked, want) {
		t.Errorf("parseCheckLog(full) checked = %q, want it to contain %q", checked, want)
	}
}
