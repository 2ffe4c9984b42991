package unitgen

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/layout"
	"github.com/coreos/go-systemd/v22/unit"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/render")

// TestParseHardening runs testdata/hardening/*.toml: each file's first line
// is "# want: TEXT", the error it must give, or nothing for a valid file.
func TestParseHardening(t *testing.T) {
	paths, _ := filepath.Glob("testdata/hardening/*.toml")
	if len(paths) == 0 {
		t.Fatal("no testdata/hardening cases")
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(data), "\n")
			want, ok := strings.CutPrefix(first, "# want:")
			if !ok {
				t.Fatalf("%s: first line %q is not \"# want: TEXT\"", path, first)
			}
			want = strings.TrimSpace(want)
			_, err = parseHardening(data)
			switch {
			case want == "" && err != nil:
				t.Errorf("parseHardening(%s) = %v, want nil", path, err)
			case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
				t.Errorf("parseHardening(%s) = %v, want an error containing %q", path, err, want)
			}
		})
	}
}

func TestParseHardeningValues(t *testing.T) {
	data, err := os.ReadFile("testdata/hardening/ok.toml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseHardening(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []Directive{
		{"SystemCallFilter", []string{"@system-service", "~@privileged"}, "two lines"},
		{"DeviceAllow", []string{""}, "an empty list"},
		{"NoNewPrivileges", []string{"false"}, "a bool"},
	}
	if len(got) != len(want) {
		t.Fatalf("parseHardening(ok.toml) = %d directives, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Name != want[i].Name || strings.Join(got[i].Values, "|") != strings.Join(want[i].Values, "|") || got[i].Why != want[i].Why {
			t.Errorf("parseHardening(ok.toml)[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestHardeningProfile checks the embedded profile for the directives the
// security bar rests on, and that none is given twice.
func TestHardeningProfile(t *testing.T) {
	h, err := Hardening()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range h {
		if _, dup := got[d.Name]; dup {
			t.Errorf("hardening profile sets %s twice; keep one table per directive", d.Name)
		}
		got[d.Name] = strings.Join(d.Values, "|")
	}
	for name, want := range map[string]string{
		"DynamicUser": "true", "ProtectSystem": "strict", "CapabilityBoundingSet": "", "NoNewPrivileges": "true",
		"PrivateDevices": "true", "PrivateUsers": "true", "DeviceAllow": "", "ProtectProc": "invisible",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6", "MemoryDenyWriteExecute": "true",
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("hardening profile %s = %q (set: %v), want %q", name, v, ok, want)
		}
	}
	for _, computed := range []string{"RootDirectory", "BindReadOnlyPaths", "IPAddressDeny", "IPAddressAllow", "User", "LoadCredential", "Environment"} {
		if _, ok := got[computed]; ok {
			t.Errorf("hardening profile sets %s, which unitgen computes from the spec", computed)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Spec)
		want string // substring of the error; "" means valid
	}{
		{"default", func(*Spec) {}, ""},
		{"ipv6", func(s *Spec) { s.Listen = "[::1]:8000" }, ""},
		{"any host", func(s *Spec) { s.Listen = ":8000" }, ""},
		{"unix", func(s *Spec) { s.Listen = "/run/bitpoll/bitpoll.sock" }, ""},
		{"port zero", func(s *Spec) { s.Listen = "127.0.0.1:0" }, `has port "0"; want 1 to 65535`},
		{"port high", func(s *Spec) { s.Listen = "127.0.0.1:65536" }, `want 1 to 65535`},
		{"host name", func(s *Spec) { s.Listen = "localhost:8000" }, `has host "localhost"; want an IP address`},
		{"no port", func(s *Spec) { s.Listen = "127.0.0.1" }, `is neither host:port nor an absolute unix socket path`},
		{"relative socket", func(s *Spec) { s.Listen = "run/x.sock" }, `is neither host:port`},
		{"socket newline", func(s *Spec) { s.Listen = "/run/x\nExecStart=/bin/sh" }, `is not a plain absolute path`},
		{"socket too long", func(s *Spec) { s.Listen = "/" + strings.Repeat("a", 120) }, "longer than the 107 bytes"},
		{"group", func(s *Spec) { s.SocketGroup = "www data" }, `socket group "www data" is not a group name`},
		{"workers", func(s *Spec) { s.Workers = 0 }, "workers 0 is out of range"},
		{"timeout fraction", func(s *Spec) { s.Timeout = 1500 * time.Millisecond }, "not a whole number of seconds"},
		{"project", func(s *Spec) { s.Project = "bit-poll" }, `project "bit-poll" is not a Python module name`},
		{"specifier", func(s *Spec) { s.Paths.Settings = "/etc/%n.json" }, `settings file "/etc/%n.json" is not a plain absolute path`},
		{"dollar", func(s *Spec) { s.Paths.Opt = "/opt/$HOME" }, `is not a plain absolute path`},
		{"space", func(s *Spec) { s.Paths.SecretsDir = "/etc/bit poll" }, `is not a plain absolute path`},
		{"colon", func(s *Spec) { s.Paths.SecretsDir = "/etc/a:b" }, `is not a plain absolute path`},
		{"unclean", func(s *Spec) { s.Paths.Root = "/opt/bitpoll/../root" }, `is not clean; write it as "/opt/root"`},
		{"current outside", func(s *Spec) { s.Paths.Current = "/srv/current" }, "is not under the opt directory"},
		{"root is opt", func(s *Spec) { s.Paths.Root = "/opt/bitpoll" }, "must be an empty directory of its own"},
		{"venv path", func(s *Spec) { s.Paths.Venv = "../venv" }, `venv directory "../venv" is not a plain name`},
		{"missing credential", func(s *Spec) { s.Credentials = []string{"secret_key"} }, `credential "field_encryption_key" is missing`},
		{"unknown credential", func(s *Spec) { s.Credentials = append(RequiredCredentials, "api_token") }, `credential "api_token" is unknown`},
		{"allow all", func(s *Spec) { s.OutboundAllow = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")} }, "allows every address; to open outbound to everything"},
		{"invalid prefix", func(s *Spec) { s.OutboundAllow = []netip.Prefix{{}} }, "invalid prefix"},
		{"private network", func(s *Spec) { s.PrivateNetwork = true }, ""},
		{"private network and allow-list", func(s *Spec) {
			s.PrivateNetwork, s.OutboundAllow = true, []netip.Prefix{netip.MustParsePrefix("192.0.2.25/32")}
		}, "a private network cannot reach the outbound allow-list"},
		{"private network and open", func(s *Spec) { s.PrivateNetwork, s.OutboundAny = true, true }, "a private network cannot reach"},
		{"interpreter dir", func(s *Spec) { s.InterpreterDirs = []string{"opt/python"} }, `interpreter directory "opt/python" is not a plain absolute path`},
	}
	for _, tt := range tests {
		s := exampleSpec()
		tt.edit(&s)
		err := s.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: Validate(%+v) = %v, want %q", tt.name, s, err, tt.want)
		}
	}
}

func TestSerializeRejects(t *testing.T) {
	tests := []struct {
		opt  *unit.UnitOption
		want string
	}{
		{opt("Service", "Environment", "A=1\nExecStartPre=/bin/sh"), "line break"},
		{opt("Service", "Environment", "A=1\r"), "control character"},
		{opt("Service", "ExecStart", `/bin/true \`), "ends in a backslash"},
		{opt("Service", "ExecStart", strings.Repeat("x", 3000)), "too long"},
		{opt("Service\n", "User", "x"), "is not a section and directive name"},
		{opt("Service", "User=root\nX", "x"), "is not a section and directive name"},
	}
	for _, tt := range tests {
		_, err := Serialize([]*unit.UnitOption{tt.opt})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Serialize(%q=%q) = %v, want an error containing %q", tt.opt.Name, tt.opt.Value, err, tt.want)
		}
	}
}

// TestRenderGolden compares the rendered units and server block with
// testdata/render; run with -update to rewrite them after a deliberate change.
func TestRenderGolden(t *testing.T) {
	unix := exampleSpec()
	unix.Listen, unix.SocketGroup = "/run/bitpoll/bitpoll.sock", "www-data"
	unix.Credentials = append(RequiredCredentials, "db_password", "email_password")
	unix.OutboundAllow = []netip.Prefix{netip.MustParsePrefix("192.0.2.25/32"), netip.MustParsePrefix("2001:db8::1/64")}
	unix.InterpreterDirs = []string{"/opt/python3.13"}
	open := exampleSpec()
	open.Listen, open.OutboundAny = ":8000", true
	private := exampleSpec()
	private.PrivateNetwork = true
	for name, s := range map[string]Spec{"default": exampleSpec(), "unix": unix, "open": open, "private": private} {
		units, err := Render(s)
		if err != nil {
			t.Fatalf("Render(%s) = %v", name, err)
		}
		got, err := Text(units)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, filepath.Join("testdata", "render", name+".units"), got)
		ngx, err := Nginx(s, "poll.example.org")
		if err != nil {
			t.Fatalf("Nginx(%s) = %v", name, err)
		}
		golden(t, filepath.Join("testdata", "render", name+".nginx"), ngx)
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("rendered output differs from %s (go test -update rewrites it):\n%s", path, got)
	}
}

// TestRenderRoundTrip parses each rendered unit back with go-systemd's
// parser: every option must come back as it was, in order.
func TestRenderRoundTrip(t *testing.T) {
	units, err := Render(exampleSpec())
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range units {
		data, err := u.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		back, err := unit.DeserializeOptions(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("DeserializeOptions(%s) = %v", u.Name, err)
		}
		if len(back) != len(u.Options) {
			t.Fatalf("%s: %d options back, want %d", u.Name, len(back), len(u.Options))
		}
		for i := range back {
			if !back[i].Match(u.Options[i]) {
				t.Errorf("%s option %d = %v, want %v", u.Name, i, back[i], u.Options[i])
			}
		}
	}
}

// values returns the values of name in a unit's [Service] section.
func values(u Unit, name string) []string {
	var out []string
	for _, o := range u.Options {
		if o.Section == "Service" && o.Name == name {
			out = append(out, o.Value)
		}
	}
	return out
}

// TestSecretsOnlyAsCredentials: the secrets directory appears in
// LoadCredential= and nowhere else, and no environment value names a
// secret; the service's view does not contain the secrets directory.
func TestSecretsOnlyAsCredentials(t *testing.T) {
	s := exampleSpec()
	s.Credentials = append(RequiredCredentials, "db_password")
	units, err := Render(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range units[1:] {
		creds := values(u, "LoadCredential")
		want := []string{
			"secret_key:/etc/bitpoll/secrets/secret_key",
			"field_encryption_key:/etc/bitpoll/secrets/field_encryption_key",
			"db_password:/etc/bitpoll/secrets/db_password",
		}
		if strings.Join(creds, " ") != strings.Join(want, " ") {
			t.Errorf("%s LoadCredential = %q, want %q", u.Name, creds, want)
		}
		for _, o := range u.Options {
			if o.Name == "LoadCredential" {
				continue
			}
			if strings.Contains(o.Value, s.Paths.SecretsDir) || strings.Contains(o.Value, "/etc/bitpoll ") || strings.HasSuffix(o.Value, "/etc/bitpoll") {
				t.Errorf("%s %s=%q exposes the secrets directory", u.Name, o.Name, o.Value)
			}
		}
		for _, env := range values(u, "Environment") {
			if strings.Contains(strings.ToLower(env), "secret") || strings.Contains(strings.ToLower(env), "password") {
				t.Errorf("%s Environment=%q carries a secret", u.Name, env)
			}
		}
	}
}

func TestOutboundAllowList(t *testing.T) {
	s := exampleSpec()
	s.OutboundAllow = []netip.Prefix{netip.MustParsePrefix("192.0.2.25/32"), netip.MustParsePrefix("198.51.100.7/24")}
	units, err := Render(s)
	if err != nil {
		t.Fatal(err)
	}
	svc := units[1]
	if got := values(svc, "IPAddressDeny"); strings.Join(got, "") != "any" {
		t.Errorf("IPAddressDeny = %q, want \"any\"", got)
	}
	if got, want := strings.Join(values(svc, "IPAddressAllow"), ""), "localhost 192.0.2.25/32 198.51.100.0/24"; got != want {
		t.Errorf("IPAddressAllow = %q, want %q", got, want)
	}
	s.OutboundAny = true
	if units, err = Render(s); err != nil {
		t.Fatal(err)
	}
	if got := values(units[1], "IPAddressDeny"); len(got) != 0 {
		t.Errorf("with OutboundAny, IPAddressDeny = %q, want none", got)
	}
}

// TestPrivateNetwork checks that PrivateNetwork=true is in both the
// service and the migration template when the spec asks for it, beside
// the localhost-only allow-list, and in neither when it does not.
func TestPrivateNetwork(t *testing.T) {
	for _, private := range []bool{false, true} {
		s := exampleSpec()
		s.PrivateNetwork = private
		units, err := Render(s)
		if err != nil {
			t.Fatal(err)
		}
		want := []string(nil)
		if private {
			want = []string{"true"}
		}
		for _, u := range units[1:] {
			if got := values(u, "PrivateNetwork"); strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("PrivateNetwork spec %v: %s PrivateNetwork = %q, want %q", private, u.Name, got, want)
			}
			if got := strings.Join(values(u, "IPAddressAllow"), ""); got != "localhost" {
				t.Errorf("PrivateNetwork spec %v: %s IPAddressAllow = %q, want \"localhost\"", private, u.Name, got)
			}
		}
		if got := values(units[0], "PrivateNetwork"); len(got) != 0 {
			t.Errorf("%s PrivateNetwork = %q, want none: the socket listens in the host's network", units[0].Name, got)
		}
	}
}

func TestSocket(t *testing.T) {
	tests := []struct {
		listen, group string
		want          []string // Name=Value lines of [Socket]
	}{
		{"127.0.0.1:8000", "", []string{"ListenStream=127.0.0.1:8000", "Service=bitpoll@7.service", "NoDelay=true"}},
		{":8000", "", []string{"ListenStream=8000", "Service=bitpoll@7.service", "NoDelay=true", "BindIPv6Only=both"}},
		{"/run/bitpoll/bitpoll.sock", "", []string{"ListenStream=/run/bitpoll/bitpoll.sock", "Service=bitpoll@7.service", "SocketMode=0666", "RemoveOnStop=true"}},
		{"/run/bitpoll/bitpoll.sock", "www-data", []string{"ListenStream=/run/bitpoll/bitpoll.sock", "Service=bitpoll@7.service", "SocketGroup=www-data", "SocketMode=0660", "RemoveOnStop=true"}},
	}
	for _, tt := range tests {
		s := exampleSpec()
		s.Listen, s.SocketGroup = tt.listen, tt.group
		var got []string
		for _, o := range socketOptions(s) {
			if o.Section == "Socket" {
				got = append(got, o.Name+"="+o.Value)
			}
		}
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("socketOptions(%q, %q) = %q, want %q", tt.listen, tt.group, got, tt.want)
		}
	}
}

func TestNginx(t *testing.T) {
	tests := []struct {
		listen string
		names  []string
		want   string // substring of the output or the error
	}{
		{"127.0.0.1:8000", []string{"poll.example.org"}, "server 127.0.0.1:8000;"},
		{"0.0.0.0:8000", []string{"poll.example.org"}, "server 127.0.0.1:8000;"},
		{"[::]:8000", []string{"poll.example.org"}, "server [::1]:8000;"},
		{"/run/bitpoll/bitpoll.sock", []string{"poll.example.org", "*.example.org"}, "server_name poll.example.org *.example.org;"},
		{"/run/bitpoll/bitpoll.sock", []string{"poll.example.org"}, "server unix:/run/bitpoll/bitpoll.sock;"},
		{"127.0.0.1:8000", []string{"poll.example.org; return 302"}, `server name "poll.example.org; return 302" is not a host name`},
		{"127.0.0.1:8000", nil, "no server name"},
	}
	for _, tt := range tests {
		s := exampleSpec()
		s.Listen = tt.listen
		out, err := Nginx(s, tt.names...)
		got := string(out)
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, tt.want) {
			t.Errorf("Nginx(%q, %q) = %q, want it to contain %q", tt.listen, tt.names, got, tt.want)
		}
	}
}

// FuzzRender: whatever Spec validates renders to unit files that parse back
// to the same options, so no value can break out of its line.
func FuzzRender(f *testing.F) {
	f.Add("127.0.0.1:8000", "/etc/bitpoll/settings.json", "www-data", "bitpoll")
	f.Add("/run/bitpoll/bitpoll.sock", "/etc/bitpoll/x\ny", "", "p")
	f.Add("[::1]:1", "/a/%n", "g", "x\\")
	f.Add(":65535", "/$x", "a b", "_")
	f.Fuzz(func(t *testing.T, listen, settings, group, project string) {
		s := exampleSpec()
		s.Listen, s.Paths.Settings, s.SocketGroup, s.Project = listen, settings, group, project
		units, err := Render(s)
		if err != nil {
			return
		}
		for _, u := range units {
			data, err := u.Bytes()
			if err != nil {
				t.Fatalf("%s of a valid spec: %v", u.Name, err)
			}
			back, err := unit.DeserializeOptions(bytes.NewReader(data))
			if err != nil || len(back) != len(u.Options) {
				t.Fatalf("%s does not parse back (%v, %d of %d options):\n%s", u.Name, err, len(back), len(u.Options), data)
			}
		}
	})
}

// TestDefaultPathsAreTheLayouts: the units name the paths package layout
// gives a system without --root, the same ones the store writes.
func TestDefaultPathsAreTheLayouts(t *testing.T) {
	p, l := DefaultPaths(), layout.Layout{}
	for _, tc := range []struct{ name, got, want string }{
		{"Opt", p.Opt, l.OptDir()},
		{"Current", p.Current, l.Current()},
		{"Generations", p.Generations, l.GenerationsDir()},
		{"Settings", p.Settings, l.SettingsFile()},
		{"SecretsDir", p.SecretsDir, l.SecretsDir()},
		{"Root", p.Root, filepath.Join(l.OptDir(), "root")},
	} {
		if tc.got != tc.want {
			t.Errorf("DefaultPaths().%s = %q, the layout's is %q", tc.name, tc.got, tc.want)
		}
	}
}
