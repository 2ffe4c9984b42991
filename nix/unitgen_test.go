package nix

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/unitgen"
)

// differs lists the [Service] directives the NixOS module may set
// differently from unitgen, each with the reason and, where the value is
// still checked, how.
var differs = map[string]string{
	"ExecStart":           "store paths instead of /opt/bitpoll/generations/%i; gunicorn's arguments are compared, and the migration script is Nix's own file",
	"ExecReload":          "coreutils' kill from the store instead of /bin/sh, which NixOS units do not have on their PATH",
	"WorkingDirectory":    "the package's share/bitpoll/app instead of the instance's generation's app",
	"Environment":         "BITPOLL_SETTINGS_FILE and BITPOLL_STATIC_ROOT name files in the store; the other variables are compared",
	"LoadCredential":      "the example's secretKeyFile is its own path; the credential names are compared",
	"RootDirectory":       "/var/empty with TemporaryFileSystem=/ (NixOS's own confinement pattern) instead of an empty /opt/bitpoll/root",
	"TemporaryFileSystem": "the writable tmpfs over /var/empty that the bind mounts go into; unitgen's root directory is a real empty directory",
	"BindReadOnlyPaths":   "/nix/store holds the app, interpreter and settings; /opt/bitpoll, /usr and /lib do not exist on NixOS",
}

// nixUnits evaluates the example's bitpoll and bitpoll-migrate services
// and its socket.
type nixService struct {
	Description   string         `json:"description"`
	Requires      []string       `json:"requires"`
	After         []string       `json:"after"`
	Before        []string       `json:"before"`
	WantedBy      []string       `json:"wantedBy"`
	ServiceConfig map[string]any `json:"serviceConfig"`
}

// TestModuleMatchesUnitgen compares the NixOS module's units for the README
// example with unitgen.Render for the same options, directive by
// directive: every [Service] directive must agree except those in differs.
func TestModuleMatchesUnitgen(t *testing.T) {
	out, err := flake(t, "eval", "--json", "FLAKE#nixosConfigurations.example.config.systemd", "--apply",
		`s: let pick = u: { inherit (u) description requires after before wantedBy serviceConfig; }; in { services = { bitpoll = pick s.services.bitpoll; bitpoll-migrate = pick s.services.bitpoll-migrate; }; socket = { inherit (s.sockets.bitpoll) listenStreams socketConfig; }; }`)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Services map[string]nixService `json:"services"`
		Socket   struct {
			ListenStreams []string       `json:"listenStreams"`
			SocketConfig  map[string]any `json:"socketConfig"`
		} `json:"socket"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}

	units, err := unitgen.Render(unitgen.Spec{
		Listen: "127.0.0.1:8080", Workers: 2, Timeout: 30 * time.Second, Project: "bitpoll",
		Paths: unitgen.DefaultPaths(), Credentials: unitgen.RequiredCredentials,
		Generation: 1, DatabaseStamp: "000000000000",
		// SQLite, no mail, no allow-list: the example needs no network.
		PrivateNetwork: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	compareUnits(t, units, nixSide{Services: got.Services, Socket: got.Socket})
}

func compareSocket(t *testing.T, want map[string][]string, listen []string, cfg map[string]any) {
	t.Helper()
	if !slices.Equal(listen, want["Socket.ListenStream"]) {
		t.Errorf("bitpoll.socket ListenStream = %q, want unitgen's %q", listen, want["Socket.ListenStream"])
	}
	for key, vals := range want {
		section, name, _ := strings.Cut(key, ".")
		// Service= names the generation the socket starts; NixOS's socket
		// starts its one bitpoll.service by default.
		if section != "Socket" || name == "ListenStream" || name == "Service" {
			continue
		}
		if got := values(cfg[name]); !slices.Equal(got, vals) {
			t.Errorf("bitpoll.socket %s = %q, want unitgen's %q", name, got, vals)
		}
	}
}

func compareService(t *testing.T, unit string, names []string, want map[string][]string, svc nixService) {
	t.Helper()
	for _, key := range names {
		section, name, _ := strings.Cut(key, ".")
		vals := want[key]
		for i, v := range vals {
			// An instance's own names: NixOS has one unit of each.
			v = strings.ReplaceAll(v, " (generation %i)", "")
			vals[i] = strings.ReplaceAll(v, "@%i", "")
		}
		switch section {
		case "Unit":
			compareUnitSection(t, unit, name, vals, svc)
			continue
		case "Install":
			if name == "WantedBy" && !slices.Equal(svc.WantedBy, strings.Fields(strings.Join(vals, " "))) {
				t.Errorf("%s WantedBy = %q, want unitgen's %q", unit, svc.WantedBy, vals)
			}
			continue
		}
		got := values(svc.ServiceConfig[name])
		switch name {
		case "ExecStart":
			if unit == unitgen.ServiceTemplate && gunicornArgs(got) != gunicornArgs(vals) {
				t.Errorf("%s ExecStart = %q, want unitgen's gunicorn arguments %q", unit, got, vals)
			}
		case "ExecReload":
			if len(got) != 1 || !strings.HasSuffix(got[0], `/bin/kill -s HUP $MAINPID`) {
				t.Errorf("%s ExecReload = %q, want kill -s HUP $MAINPID", unit, got)
			}
		case "WorkingDirectory":
			if len(got) != 1 || !strings.HasSuffix(got[0], "/share/bitpoll/app") {
				t.Errorf("%s WorkingDirectory = %q, want the package's share/bitpoll/app", unit, got)
			}
		case "Environment":
			if !slices.Equal(envNames(got), envNames(vals)) || !slices.Equal(got[2:], vals[2:]) {
				t.Errorf("%s Environment = %q, want the variables of unitgen's %q", unit, got, vals)
			}
		case "LoadCredential":
			if !slices.Equal(envNames(got), envNames(vals)) {
				t.Errorf("%s LoadCredential = %q, want unitgen's credentials %q", unit, got, vals)
			}
		case "IPAddressAllow":
			// One line or several, an address or its /32: the same list.
			if !slices.Equal(allowWords(got), allowWords(vals)) {
				t.Errorf("%s IPAddressAllow = %q, want unitgen's %q", unit, got, vals)
			}
		case "RootDirectory", "BindReadOnlyPaths", "TemporaryFileSystem":
			if len(got) == 0 {
				t.Errorf("%s has no %s: the module must confine the file system view too", unit, name)
			}
			// The paths differ (a store against /opt/bitpoll), but what of
			// /run the service sees, a database's socket, must not.
			if name == "BindReadOnlyPaths" && !slices.Equal(runPaths(got), runPaths(vals)) {
				t.Errorf("%s shows %q of /run, want unitgen's %q", unit, runPaths(got), runPaths(vals))
			}
		default:
			if !slices.Equal(got, vals) {
				t.Errorf("%s %s = %q, want unitgen's %q", unit, name, got, vals)
			}
		}
	}
	// Nothing beyond unitgen's directives, but the listed differences.
	for name := range svc.ServiceConfig {
		if _, ok := want["Service."+name]; !ok {
			if _, listed := differs[name]; !listed {
				t.Errorf("%s sets %s=%q, which unitgen does not: add it to unitgen or list the difference with its reason", unit, name, values(svc.ServiceConfig[name]))
			}
		}
	}
}

// compareUnitSection checks [Unit] lines; NixOS adds its own ordering on
// the secrets generator, which unitgen has no counterpart for.
func compareUnitSection(t *testing.T, unit, name string, vals []string, svc nixService) {
	t.Helper()
	words := strings.Fields(strings.Join(vals, " "))
	var got []string
	switch name {
	case "Description":
		got = []string{svc.Description}
		words = vals
	case "Requires":
		got = svc.Requires
	case "After":
		got = svc.After
	case "Before":
		got = svc.Before
	default:
		t.Errorf("%s: unitgen sets [Unit] %s, which this test does not compare yet", unit, name)
		return
	}
	got = slices.DeleteFunc(slices.Clone(got), func(s string) bool { return s == "bitpoll-secrets.service" })
	slices.Sort(got)
	slices.Sort(words)
	if !slices.Equal(got, words) {
		t.Errorf("%s [Unit] %s = %q, want unitgen's %q (besides bitpoll-secrets.service)", unit, name, got, words)
	}
}

// values renders a NixOS serviceConfig value as unit lines: lists are one
// line per element, bools true/false, numbers in decimal.
func values(v any) []string {
	switch v := v.(type) {
	case nil:
		return nil
	case []any:
		var out []string
		for _, e := range v {
			out = append(out, values(e)...)
		}
		return out
	case string:
		return []string{v}
	case bool:
		return []string{fmt.Sprint(v)}
	case float64:
		return []string{fmt.Sprint(v)}
	}
	return []string{fmt.Sprint(v)}
}

// gunicornArgs is an ExecStart without the gunicorn binary's path.
// storeHash is the hash that starts a Nix store path's name.
var storeHash = regexp.MustCompile(`^[0-9a-z]{32}-`)

func gunicornArgs(lines []string) string {
	if len(lines) != 1 {
		return fmt.Sprint(lines)
	}
	f := strings.Fields(lines[0])
	if len(f) == 0 || !strings.HasSuffix(f[0], "/bin/gunicorn") {
		return lines[0]
	}
	// The config file is each side's copy of shim/gunicorn.conf.py: the
	// installer's beside the units, a store path's in Nix.
	for i := 1; i+1 < len(f); i++ {
		if f[i] == "--config" {
			f[i+1] = storeHash.ReplaceAllString(path.Base(f[i+1]), "")
		}
	}
	return strings.Join(f[1:], " ")
}

// envNames is the part before the first "=" or ":" of each line.
func envNames(lines []string) []string {
	var out []string
	for _, l := range lines {
		i := strings.IndexAny(l, "=:")
		if i < 0 {
			i = len(l)
		}
		out = append(out, l[:i])
	}
	return out
}

// runPaths are the entries under /run of BindReadOnlyPaths lines, sorted.
func runPaths(lines []string) []string {
	var out []string
	for _, l := range lines {
		for _, f := range strings.Fields(l) {
			if strings.HasPrefix(strings.TrimPrefix(f, "-"), "/run/") {
				out = append(out, f)
			}
		}
	}
	slices.Sort(out)
	return out
}
