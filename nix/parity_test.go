package nix

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/config"
	"github.com/bitpoll-install/bitpoll-install/unitgen"
)

// parityCase is one setup written twice: as a bitpoll.toml and as
// services.bitpoll options on top of the README example (port 8080,
// allowedHosts = [ "bitpoll.company.com" ], secretKeyFile). The README's
// table of option pairs is what each side is written from.
type parityCase struct {
	name string
	toml string // the whole file
	nix  string // a NixOS module extending the example
}

// parityBase is the example's own settings in TOML.
const parityBase = `base_url = "http://bitpoll.company.com:8080"
allowed_hosts = ["bitpoll.company.com"]
`

var parityCases = []parityCase{
	{"example", parityBase + "[listen]\naddress = \"127.0.0.1\"\nport = 8080\n", `{ }`},
	{
		"every address, workers and site settings",
		`base_url = "https://bitpoll.company.com"
allowed_hosts = ["bitpoll.company.com"]
csrf_trusted_origins = ["https://www.company.com"]
workers = 4
timeout = 60
time_zone = "Europe/Berlin"
log_level = "WARNING"
secure_proxy_ssl_header = true
ssl_redirect = true
[listen]
address = "::"
port = 8080
[django]
SITE_NAME = "Polls"
`,
		`{
			services.bitpoll = {
				listenAddress = "::";
				workers = 4;
				timeout = 60;
				settings = {
					base_url = "https://bitpoll.company.com";
					csrf_trusted_origins = [ "https://www.company.com" ];
					time_zone = "Europe/Berlin";
					log_level = "WARNING";
					secure_proxy_ssl_header = true;
					ssl_redirect = true;
					django.SITE_NAME = "Polls";
				};
			};
		}`,
	},
	{
		"unix socket for a proxy's group, a mail relay",
		parityBase + `[listen]
socket = "/run/bitpoll/bitpoll.sock"
socket_group = "www-data"
[mail]
host = "192.0.2.25"
port = 587
user = "bitpoll"
password = true
use_tls = true
from = "bitpoll@company.com"
[outbound]
allow = ["192.0.2.25", "2001:db8::/64"]
`,
		`{
			services.bitpoll = {
				listenSocket = "/run/bitpoll/bitpoll.sock";
				listenSocketGroup = "www-data";
				settings.email = { host = "192.0.2.25"; port = 587; user = "bitpoll"; use_tls = true; from = "bitpoll@company.com"; };
				emailPasswordFile = "/etc/bitpoll/secrets/email_password";
				outboundAllow = [ "192.0.2.25" "2001:db8::/64" ];
			};
		}`,
	},
	{
		"PostgreSQL over its unix socket, console mail",
		parityBase + `[listen]
address = "127.0.0.1"
port = 8080
[database]
url = "postgresql://bitpoll@/bitpoll?host=/run/postgresql"
password = true
[mail]
backend = "console"
`,
		`{
			services.bitpoll = {
				database.url = "postgresql://bitpoll@/bitpoll?host=/run/postgresql";
				database.passwordFile = "/etc/bitpoll/secrets/db_password";
				settings.email.backend = "console";
			};
		}`,
	},
	{
		"PostgreSQL over TCP, outbound open",
		parityBase + `[listen]
address = "0.0.0.0"
port = 8080
[database]
url = "postgresql://bitpoll@db.company.com:5432/bitpoll"
[outbound]
allow = ["any"]
`,
		`{
			services.bitpoll = {
				listenAddress = "0.0.0.0";
				database.url = "postgresql://bitpoll@db.company.com:5432/bitpoll";
				outboundAllow = [ "any" ];
			};
		}`,
	},
}

// nixSide is what TestOptionParity evaluates of one case.
type nixSide struct {
	Services map[string]nixService `json:"services"`
	Socket   struct {
		ListenStreams []string       `json:"listenStreams"`
		SocketConfig  map[string]any `json:"socketConfig"`
	} `json:"socket"`
	Settings map[string]any `json:"settings"`
	// Migrate is the migration script, which names the stamp.
	Migrate string `json:"migrate"`
}

// TestOptionParity writes each setting through both sides, as the
// README's table pairs the TOML keys and the Nix options, and checks that
// they give the same units, directive by directive (unitgen's against the
// module's, as TestModuleMatchesUnitgen compares them), and the same
// settings.json, key by key (static_root names each side's own copy of
// the static files), and the same migration stamp for the database.
func TestOptionParity(t *testing.T) {
	var mods []string
	for _, c := range parityCases {
		mods = append(mods, fmt.Sprintf("%q = (%s);", c.name, c.nix))
	}
	apply := `c: let
		pick = u: { inherit (u) description requires after before wantedBy serviceConfig; };
		side = m: let config = (c.extendModules { modules = [ m ]; }).config; s = config.systemd; in {
			services = { bitpoll = pick s.services.bitpoll; bitpoll-migrate = pick s.services.bitpoll-migrate; };
			socket = { inherit (s.sockets.bitpoll) listenStreams socketConfig; };
			settings = config.services.bitpoll.settings;
			migrate = s.services.bitpoll-migrate.serviceConfig.ExecStart.text;
			failed = map (a: a.message) (builtins.filter (a: !a.assertion) config.assertions);
		};
	in builtins.mapAttrs (_: side) { ` + strings.Join(mods, "\n") + ` }`
	out, err := flake(t, "eval", "--json", "FLAKE#nixosConfigurations.example", "--apply", apply)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]struct {
		nixSide
		Failed []string `json:"failed"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	for _, c := range parityCases {
		t.Run(c.name, func(t *testing.T) {
			n, ok := got[c.name]
			if !ok {
				t.Fatalf("no evaluation of %q", c.name)
			}
			if len(n.Failed) > 0 {
				t.Fatalf("the module refuses the options: %q", n.Failed)
			}
			cfg, err := config.Parse([]byte(c.toml), "bitpoll.toml")
			if err != nil {
				t.Fatal(err)
			}
			spec, err := cfg.Spec(unitgen.DefaultPaths())
			if err != nil {
				t.Fatal(err)
			}
			units, err := unitgen.Render(spec)
			if err != nil {
				t.Fatal(err)
			}
			compareUnits(t, units, n.nixSide)

			s, err := cfg.Settings(unitgen.DefaultPaths())
			if err != nil {
				t.Fatal(err)
			}
			data, err := s.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]any
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatal(err)
			}
			compareSettings(t, want, n.Settings)

			// The same database, the same stamp: switching between the
			// two sides does not migrate again for nothing.
			m := stampLine.FindStringSubmatch(n.Migrate)
			if m == nil {
				t.Fatalf("the module's migration script has no stamp= line:\n%s", n.Migrate)
			}
			if !strings.HasSuffix(m[1], "-"+spec.DatabaseStamp) {
				t.Errorf("the module's migration stamp %s does not end in the Go side's database stamp %s", m[1], spec.DatabaseStamp)
			}
		})
	}
}

// compareUnits compares unitgen's units with the module's.
func compareUnits(t *testing.T, units []unitgen.Unit, got nixSide) {
	t.Helper()
	for _, u := range units {
		want := map[string][]string{}
		var names []string
		for _, o := range u.Options {
			key := o.Section + "." + o.Name
			if _, ok := want[key]; !ok {
				names = append(names, key)
			}
			want[key] = append(want[key], o.Value)
		}
		switch u.Name {
		case unitgen.SocketUnit:
			compareSocket(t, want, got.Socket.ListenStreams, got.Socket.SocketConfig)
		case unitgen.ServiceTemplate, unitgen.MigrateTemplate:
			svc, ok := got.Services[strings.TrimSuffix(u.Name, "@.service")]
			if !ok {
				t.Fatalf("the module has no %s", u.Name)
			}
			compareService(t, u.Name, names, want, svc)
		default:
			t.Errorf("unitgen renders %s, which this test does not know: compare it too", u.Name)
		}
	}
}

// compareSettings compares the settings.json of both sides.
func compareSettings(t *testing.T, want, got map[string]any) {
	t.Helper()
	if root, _ := got["static_root"].(string); !strings.HasSuffix(root, "/share/bitpoll/static") {
		t.Errorf("settings static_root = %q, want the package's share/bitpoll/static", root)
	}
	if root, _ := want["static_root"].(string); root != unitgen.DefaultPaths().Current+"/static" {
		t.Errorf("Go settings static_root = %q, want current's static", root)
	}
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range keys {
			if !yield(k) {
				return
			}
		}
	}) {
		if k == "static_root" {
			continue
		}
		if !reflect.DeepEqual(want[k], got[k]) {
			t.Errorf("settings.json %s: module %s, Go config %s", k, jsonText(got[k]), jsonText(want[k]))
		}
	}
}

func jsonText(v any) string {
	if v == nil {
		return "(absent)"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// allowWords is an IPAddressAllow= value as systemd reads it: the
// addresses and prefixes of all its lines, each masked ("192.0.2.25" is
// "192.0.2.25/32"), and the names it knows.
func allowWords(lines []string) []string {
	var out []string
	for _, w := range strings.Fields(strings.Join(lines, " ")) {
		if p, err := netip.ParsePrefix(w); err == nil {
			w = p.Masked().String()
		} else if a, err := netip.ParseAddr(w); err == nil {
			w = netip.PrefixFrom(a, a.BitLen()).String()
		}
		out = append(out, w)
	}
	return out
}
