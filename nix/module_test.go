package nix

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
	"github.com/bitpoll-install/bitpoll-install/secretkey"
	"github.com/bitpoll-install/bitpoll-install/service"
	"github.com/bitpoll-install/bitpoll-install/shim"
)

// evalExample evaluates the README example, extended with module (Nix
// text, "{ }" for none), and applies fn to its config; the result is
// decoded into v.
func evalExample(t *testing.T, module, fn string, v any) {
	t.Helper()
	apply := fmt.Sprintf("c: let config = (c.extendModules { modules = [ (%s) ]; }).config; in (%s) config", module, fn)
	out, err := flake(t, "eval", "--json", "FLAKE#nixosConfigurations.example", "--apply", apply)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
}

// failedAssertions is a Nix function of config: the messages of the
// assertions that do not hold.
const failedAssertions = `map (a: a.message) (builtins.filter (a: !a.assertion) config.assertions)`

// The tree's own modules that the trimmed nixpkgs leaves out of its module
// list: importing them from modulesPath evaluates the module's PostgreSQL
// and nginx wiring against the real options.
const (
	withPostgresql = `{ modulesPath, ... }: { imports = [ "${modulesPath}/services/databases/postgresql.nix" ]; }`
	withNginx      = `{ modulesPath, ... }: { imports = [ "${modulesPath}/services/web-servers/nginx/default.nix" "${modulesPath}/security/acme" ]; }`
)

// notForManage are bitpoll.service's life-cycle settings and its socket,
// which bitpoll-manage leaves out, as the Go side's manage command does.
var notForManage = service.NotForRun

var manageProperty = regexp.MustCompile(`-p '([A-Za-z]+)=([^']*)'`)

// TestManageSandbox checks that bitpoll-manage runs with every [Service]
// setting of bitpoll.service but its life cycle: the same user, sandbox,
// settings and credentials, and nothing else.
func TestManageSandbox(t *testing.T) {
	var got struct {
		Script  string         `json:"script"`
		Service map[string]any `json:"service"`
	}
	evalExample(t, "{ }", `config: {
		script = (builtins.head (builtins.filter (p: (p.name or "") == "bitpoll-manage") config.environment.systemPackages)).text;
		service = config.systemd.services.bitpoll.serviceConfig;
	}`, &got)
	props := map[string][]string{}
	for _, m := range manageProperty.FindAllStringSubmatch(got.Script, -1) {
		props[m[1]] = append(props[m[1]], m[2])
	}
	for name, v := range got.Service {
		want := values(v)
		if slices.Contains(notForManage, name) {
			want = nil
		}
		if !slices.Equal(props[name], want) {
			t.Errorf("bitpoll-manage property %s = %q, want bitpoll.service's %q", name, props[name], want)
		}
	}
	for name := range props {
		if _, ok := got.Service[name]; !ok {
			t.Errorf("bitpoll-manage sets %s=%q, which bitpoll.service does not", name, props[name])
		}
	}
}

// TestSecretsScript runs the generator of bitpoll-secrets.service on a
// temporary directory, with the unit's umask: secrets 0600 in a 0700
// directory, a SECRET_KEY Django's deploy check accepts, a Fernet key, and
// nothing overwritten on the next start.
func TestSecretsScript(t *testing.T) {
	var unit struct {
		Script string `json:"script"`
		UMask  string `json:"umask"`
	}
	evalExample(t, `{ lib, ... }: { services.bitpoll.secretKeyFile = lib.mkForce null; }`,
		`config: { inherit (config.systemd.services.bitpoll-secrets) script; umask = config.systemd.services.bitpoll-secrets.serviceConfig.UMask; }`, &unit)
	for _, tool := range []string{"bash", "head", "base64", "tr", "wc", "mv", "mkdir", "chmod"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Skipf(t, "%s not found: the secrets script needs it", tool)
		}
	}
	const secretsDir = "/etc/bitpoll/secrets"
	if !strings.Contains(unit.Script, secretsDir) {
		t.Fatalf("bitpoll-secrets script does not write to %s:\n%s", secretsDir, unit.Script)
	}
	dir := filepath.Join(t.TempDir(), "secrets")
	script := "set -eu\numask " + unit.UMask + "\n" + strings.ReplaceAll(unit.Script, secretsDir, dir)
	run := func() map[string]string {
		t.Helper()
		if out, err := exec.Command("bash", "-c", script).CombinedOutput(); err != nil {
			t.Fatalf("bitpoll-secrets script: %v\n%s", err, out)
		}
		files := map[string]string{}
		for _, name := range []string{"secret_key", "field_encryption_key"} {
			p := filepath.Join(dir, name)
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
			}
			data, _ := os.ReadFile(p)
			files[name] = string(data)
		}
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("secrets directory: %v, %v, want mode 0700", fi.Mode().Perm(), err)
		}
		return files
	}
	first := run()
	// One format on both sides: what service.WriteSecrets writes, checked
	// the same way.
	goDir := filepath.Join(t.TempDir(), "secrets")
	if err := service.WriteSecrets(goDir); err != nil {
		t.Fatal(err)
	}
	goFiles := map[string]string{}
	for _, name := range []string{"secret_key", "field_encryption_key"} {
		data, err := os.ReadFile(filepath.Join(goDir, name))
		if err != nil {
			t.Fatal(err)
		}
		goFiles[name] = string(data)
	}
	for side, files := range map[string]map[string]string{"bitpoll-secrets.service": first, "service.WriteSecrets": goFiles} {
		if key := files["secret_key"]; len(key) != secretkey.DjangoLen || strings.Trim(key, secretkey.DjangoAlphabet) != "" {
			t.Errorf("%s: secret_key = %q (%d characters), want %d characters of %q", side, key, len(key), secretkey.DjangoLen, secretkey.DjangoAlphabet)
		}
		if raw, err := base64.URLEncoding.DecodeString(files["field_encryption_key"]); err != nil || len(raw) != 32 {
			t.Errorf("%s: field_encryption_key = %q: %d bytes, %v; want the URL-safe base64 of 32 bytes (a Fernet key)", side, files["field_encryption_key"], len(raw), err)
		}
	}
	if again := run(); again["secret_key"] != first["secret_key"] || again["field_encryption_key"] != first["field_encryption_key"] {
		t.Errorf("a second start replaced the secrets: %q, want %q", again, first)
	}
}

var stampLine = regexp.MustCompile(`(?m)^stamp=(\S+)$`)

// TestMigrationStamp checks that the migrations run once per package and
// database: another database gets its own stamp, an unrelated option does
// not.
func TestMigrationStamp(t *testing.T) {
	out, err := flake(t, "eval", "--json", "FLAKE#nixosConfigurations.example", "--apply", `c: let
		text = m: (c.extendModules { modules = [ m ]; }).config.systemd.services.bitpoll-migrate.serviceConfig.ExecStart.text;
	in {
		example = text { };
		workers = text { services.bitpoll.workers = 4; };
		postgresql = text { services.bitpoll.database.url = "postgresql://bitpoll@db.example.org/bitpoll"; };
		otherHost = text { services.bitpoll.database.url = "postgresql://bitpoll@db2.example.org/bitpoll"; };
	}`)
	if err != nil {
		t.Fatal(err)
	}
	var scripts map[string]string
	if err := json.Unmarshal(out, &scripts); err != nil {
		t.Fatal(err)
	}
	stamps := map[string]string{}
	for name, s := range scripts {
		m := stampLine.FindStringSubmatch(s)
		if m == nil {
			t.Fatalf("%s: migration script has no stamp= line:\n%s", name, s)
		}
		stamps[name] = m[1]
	}
	tests := []struct {
		a, b string
		same bool
	}{
		{"example", "workers", true},
		{"example", "postgresql", false},
		{"postgresql", "otherHost", false},
	}
	for _, tt := range tests {
		if got := stamps[tt.a] == stamps[tt.b]; got != tt.same {
			t.Errorf("stamp(%s) == stamp(%s) = %v, want %v (%q, %q)", tt.a, tt.b, got, tt.same, stamps[tt.a], stamps[tt.b])
		}
	}
}

// TestPostgresqlLocal evaluates database.createLocally with the NixOS
// PostgreSQL module: the database and its owner are ensured, the shim
// connects over /run/postgresql, which the units see, and the migrations
// wait for postgresql.target, which includes the setup that creates them.
func TestPostgresqlLocal(t *testing.T) {
	var got struct {
		Failed    []string          `json:"failed"`
		Databases []string          `json:"databases"`
		Users     []map[string]any  `json:"users"`
		Database  map[string]string `json:"database"`
		After     []string          `json:"after"`
		Requires  []string          `json:"requires"`
		Binds     []string          `json:"binds"`
	}
	evalExample(t, `{ imports = [ (`+withPostgresql+`) ]; services.bitpoll.database.createLocally = true; }`,
		`config: let m = config.systemd.services.bitpoll-migrate; in {
			failed = `+failedAssertions+`;
			databases = config.services.postgresql.ensureDatabases;
			users = map (u: { inherit (u) name ensureDBOwnership; }) config.services.postgresql.ensureUsers;
			database = config.services.bitpoll.settings.database;
			inherit (m) after requires;
			binds = config.systemd.services.bitpoll.serviceConfig.BindReadOnlyPaths;
		}`, &got)
	if len(got.Failed) > 0 {
		t.Errorf("createLocally fails assertions: %q", got.Failed)
	}
	if !slices.Equal(got.Databases, []string{"bitpoll"}) {
		t.Errorf("services.postgresql.ensureDatabases = %q, want [bitpoll]", got.Databases)
	}
	if len(got.Users) != 1 || got.Users[0]["name"] != "bitpoll" || got.Users[0]["ensureDBOwnership"] != true {
		t.Errorf("services.postgresql.ensureUsers = %v, want bitpoll owning its database", got.Users)
	}
	want := map[string]string{"url": "postgresql://bitpoll@/bitpoll?host=/run/postgresql"}
	if fmt.Sprint(got.Database) != fmt.Sprint(want) {
		t.Errorf("settings.database = %v, want %v", got.Database, want)
	}
	for name, list := range map[string][]string{"After": got.After, "Requires": got.Requires} {
		if !slices.Contains(list, "postgresql.target") {
			t.Errorf("bitpoll-migrate %s = %q, want postgresql.target (after postgresql-setup has made the user)", name, list)
		}
	}
	if !slices.Contains(got.Binds, "/run/postgresql") {
		t.Errorf("bitpoll.service BindReadOnlyPaths = %q, want /run/postgresql for the socket", got.Binds)
	}
}

// TestNginxVhost evaluates nginx.enable with the NixOS nginx module: one
// virtual host for the site that proxies to the socket, with the same
// read timeout as the Go side's server block.
func TestNginxVhost(t *testing.T) {
	var got struct {
		Failed []string `json:"failed"`
		Hosts  []string `json:"hosts"`
		Root   struct {
			ProxyPass   string `json:"proxyPass"`
			Recommended bool   `json:"recommendedProxySettings"`
			Extra       string `json:"extraConfig"`
		} `json:"root"`
		BaseURL string `json:"baseURL"`
	}
	evalExample(t, `{ imports = [ (`+withNginx+`) ]; services.bitpoll.nginx.enable = true; }`,
		`config: let h = config.services.nginx.virtualHosts; in {
			failed = `+failedAssertions+`;
			hosts = builtins.attrNames h;
			root = { inherit (h."bitpoll.company.com".locations."/") proxyPass recommendedProxySettings extraConfig; };
			baseURL = config.services.bitpoll.settings.base_url;
		}`, &got)
	if len(got.Failed) > 0 {
		t.Errorf("nginx.enable fails assertions: %q", got.Failed)
	}
	if !slices.Equal(got.Hosts, []string{"bitpoll.company.com"}) {
		t.Errorf("services.nginx.virtualHosts = %q, want [bitpoll.company.com]", got.Hosts)
	}
	if got.Root.ProxyPass != "http://127.0.0.1:8080" || !got.Root.Recommended {
		t.Errorf("location / proxyPass = %q, recommendedProxySettings = %v, want http://127.0.0.1:8080, true", got.Root.ProxyPass, got.Root.Recommended)
	}
	if !strings.Contains(got.Root.Extra, "proxy_read_timeout 35s;") {
		t.Errorf("location / extraConfig = %q, want proxy_read_timeout 35s; (gunicorn's 30 s and 5)", got.Root.Extra)
	}
	if got.BaseURL != "http://bitpoll.company.com" {
		t.Errorf("settings.base_url = %q, want http://bitpoll.company.com", got.BaseURL)
	}
}

// TestMigrationStampMatchesGo checks that the module names a migration
// stamp as the Go installer does: the same database settings give the same
// suffix (shim.Database.Stamp), so both sides migrate again on the same
// changes.
func TestMigrationStampMatchesGo(t *testing.T) {
	for name, module := range map[string]string{
		"sqlite":     `{ }`,
		"postgresql": `{ services.bitpoll.database = { type = "postgresql"; host = "db.example.org"; }; }`,
	} {
		t.Run(name, func(t *testing.T) {
			var got struct {
				Script   string          `json:"script"`
				Database json.RawMessage `json:"database"`
			}
			evalExample(t, module, `config: {
				script = config.systemd.services.bitpoll-migrate.serviceConfig.ExecStart.text;
				database = config.services.bitpoll.settings.database;
			}`, &got)
			m := stampLine.FindStringSubmatch(got.Script)
			if m == nil {
				t.Fatalf("migration script has no stamp= line:\n%s", got.Script)
			}
			var db shim.Database
			dec := json.NewDecoder(bytes.NewReader(got.Database))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&db); err != nil {
				t.Fatalf("the module's settings.database %s is not the shim's database settings: %v", got.Database, err)
			}
			if want := "-" + db.Stamp(); !strings.HasSuffix(m[1], want) {
				t.Errorf("the module's stamp %q for database %s, want it to end in Go's %q", m[1], got.Database, want)
			}
		})
	}
}

// TestSocketSurvivesPackageChange checks what switch-to-configuration
// reads: bitpoll.service restarts in place on a change (stopIfChanged =
// false), never stop-then-start, which takes bitpoll.socket down with it;
// and the socket's unit names no store path, so a new package leaves it
// as it is, listening.
func TestSocketSurvivesPackageChange(t *testing.T) {
	var got struct {
		StopIfChanged    bool   `json:"stopIfChanged"`
		RestartIfChanged bool   `json:"restartIfChanged"`
		Socket           string `json:"socket"`
	}
	evalExample(t, `{ }`, `config: {
		inherit (config.systemd.services.bitpoll) stopIfChanged restartIfChanged;
		socket = config.systemd.units."bitpoll.socket".text;
	}`, &got)
	if got.StopIfChanged || !got.RestartIfChanged {
		t.Errorf("bitpoll.service stopIfChanged = %v, restartIfChanged = %v, want false and true: a stop on switch takes the socket down", got.StopIfChanged, got.RestartIfChanged)
	}
	if strings.Contains(got.Socket, "/nix/store/") {
		t.Errorf("bitpoll.socket names a store path, so a package change would restart it:\n%s", got.Socket)
	}
}
