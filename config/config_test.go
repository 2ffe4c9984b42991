package config

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
	"github.com/bitpoll-install/bitpoll-install/unitgen"
	"golang.org/x/tools/txtar"
)

// readTxtar splits a txtar file into its comment and its "-- name --" files.
func readTxtar(t *testing.T, path string) (comment string, files map[string]string) {
	t.Helper()
	a, err := txtar.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	files = map[string]string{}
	for _, f := range a.Files {
		files[f.Name] = string(f.Data)
	}
	return string(a.Comment), files
}

// TestParse runs testdata/parse/*.txtar: a bitpoll.toml and the lines its
// error must contain (each line of want); an empty want means valid.
func TestParse(t *testing.T) {
	paths, _ := filepath.Glob("testdata/parse/*.txtar")
	if len(paths) == 0 {
		t.Fatal("no testdata/parse cases")
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			_, files := readTxtar(t, path)
			src, ok := files["bitpoll.toml"]
			if !ok {
				t.Fatalf("%s has no -- bitpoll.toml -- section", path)
			}
			want := strings.TrimSpace(files["want"])
			_, err := Parse([]byte(src), "bitpoll.toml")
			if want == "" {
				if err != nil {
					t.Errorf("Parse(%s) = %v, want nil", path, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse(%s) = nil, want an error containing %q", path, want)
			}
			for _, w := range strings.Split(want, "\n") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse(%s) = %v, want it to contain %q", path, err, w)
				}
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Key == "" && !strings.Contains(path, "syntax") {
				t.Errorf("Parse(%s) = %#v, want *Error values naming a key", path, err)
			}
		})
	}
}

// TestDefaultFile: the commented default file parses to Default.
func TestDefaultFile(t *testing.T) {
	c, err := Parse(DefaultFile, "default.toml")
	if err != nil {
		t.Fatalf("Parse(DefaultFile) = %v", err)
	}
	d := Default()
	if c.Listen != d.Listen || c.BaseURL != d.BaseURL || !slices.Equal(c.AllowedHosts, d.AllowedHosts) ||
		c.Workers != d.Workers || c.Timeout != d.Timeout || c.Database != d.Database || c.Mail != nil || len(c.Outbound.Allow) != 0 {
		t.Errorf("Parse(DefaultFile) = %+v, want Default() = %+v", c, d)
	}
	if err := d.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v, want nil", err)
	}
}

func TestWriteDefault(t *testing.T) {
	path := filepath.Join(t.TempDir(), "etc", "bitpoll", "bitpoll.toml")
	wrote, err := WriteDefault(path)
	if err != nil || !wrote {
		t.Fatalf("WriteDefault(%s) = %v, %v, want true, nil", path, wrote, err)
	}
	if err := os.WriteFile(path, []byte("base_url = \"https://mine.example.org\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wrote, err = WriteDefault(path)
	if err != nil || wrote {
		t.Fatalf("WriteDefault(%s) again = %v, %v, want false, nil", path, wrote, err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseURL != "https://mine.example.org" {
		t.Errorf("after a second WriteDefault, base_url = %q, want the admin's %q", c.BaseURL, "https://mine.example.org")
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "bitpoll.toml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want an error wrapping os.ErrNotExist", err)
	}
}

func TestCheckPortFree(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		testenv.Skipf(t, "cannot listen on 127.0.0.1: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	c := Default()
	c.Listen.Port = port
	err = c.CheckPortFree()
	if err == nil || !strings.Contains(err.Error(), "listen.port") || !strings.Contains(err.Error(), "is not free") {
		t.Errorf("CheckPortFree(%d, held) = %v, want a listen.port error saying it is not free", port, err)
	}
	ln.Close()
	if err := c.CheckPortFree(); err != nil {
		t.Errorf("CheckPortFree(%d, released) = %v, want nil", port, err)
	}
	c.Listen = Listen{Socket: "/run/bitpoll/bitpoll.sock"}
	if err := c.CheckPortFree(); err != nil {
		t.Errorf("CheckPortFree(unix socket) = %v, want nil", err)
	}
}

func parseCase(t *testing.T, name string) *Config {
	t.Helper()
	_, files := readTxtar(t, filepath.Join("testdata", "parse", name+".txtar"))
	c, err := Parse([]byte(files["bitpoll.toml"]), name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSpec(t *testing.T) {
	c := parseCase(t, "ok_full")
	s, err := c.Spec(unitgen.DefaultPaths())
	if err != nil {
		t.Fatal(err)
	}
	want := unitgen.Spec{
		Listen: "/run/bitpoll/bitpoll.sock", SocketGroup: "www-data", Workers: 4, Timeout: 60 * time.Second,
		Project: "bitpoll", Paths: unitgen.DefaultPaths(),
		Credentials:   []string{"secret_key", "field_encryption_key", "db_password", "email_password"},
		OutboundAllow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/64")},
	}
	if s.Listen != want.Listen || s.SocketGroup != want.SocketGroup || s.Workers != want.Workers || s.Timeout != want.Timeout ||
		s.Project != want.Project || s.Paths != want.Paths || !slices.Equal(s.Credentials, want.Credentials) ||
		!slices.Equal(s.OutboundAllow, want.OutboundAllow) || s.OutboundAny {
		t.Errorf("Spec(ok_full) = %+v, want %+v", s, want)
	}

	d, err := Default().Spec(unitgen.DefaultPaths())
	if err != nil {
		t.Fatal(err)
	}
	if d.Listen != "127.0.0.1:8000" || !slices.Equal(d.Credentials, unitgen.RequiredCredentials) || len(d.OutboundAllow) != 0 || d.OutboundAny {
		t.Errorf("Default().Spec() = %+v, want 127.0.0.1:8000, the required credentials and localhost only", d)
	}
}

// TestNetworkNeeds checks which configs run the service without a
// network (PrivateNetwork=yes) and which keys keep it, and that the units'
// Spec follows.
func TestNetworkNeeds(t *testing.T) {
	tests := []struct {
		body string
		want string // NetworkNeeds joined by ","; "" means no network
	}{
		{"", ""},
		{"[database]\nurl = \"sqlite:////var/lib/bitpoll/other.sqlite3\"", ""},
		{"[database]\nurl = \"postgresql://bitpoll@/bitpoll?host=/run/postgresql\"", ""},
		{"[database]\nurl = \"postgresql://bitpoll@localhost/bitpoll\"", "database.url"},
		{"[database]\nurl = \"postgresql://bitpoll@127.0.0.1:5432/bitpoll\"", "database.url"},
		{"[database]\nurl = \"postgresql://bitpoll@192.0.2.10/bitpoll\"\n[outbound]\nallow = [\"192.0.2.10\"]", "database.url,outbound.allow"},
		{"[mail]\nbackend = \"console\"", ""},
		{"[mail]\nfrom = \"bitpoll@example.org\"", "mail"},
		{"[mail]\nhost = \"localhost\"\nport = 25", "mail"},
		{"[outbound]\nallow = []", ""},
		{"[outbound]\nallow = [\"192.0.2.25\"]", "outbound.allow"},
		{"[outbound]\nallow = [\"any\"]", "outbound.allow"},
		{"[listen]\nsocket = \"/run/bitpoll/bitpoll.sock\"", ""},
	}
	for _, tt := range tests {
		toml := "base_url = \"http://localhost:8000\"\n" + tt.body
		c, err := Parse([]byte(toml), "bitpoll.toml")
		if err != nil {
			t.Fatalf("Parse(%q) = %v", toml, err)
		}
		if got := strings.Join(c.NetworkNeeds(), ","); got != tt.want {
			t.Errorf("NetworkNeeds(%q) = %q, want %q", tt.body, got, tt.want)
		}
		s, err := c.Spec(unitgen.DefaultPaths())
		if err != nil {
			t.Fatalf("Spec(%q) = %v", tt.body, err)
		}
		if s.PrivateNetwork != (tt.want == "") {
			t.Errorf("Spec(%q).PrivateNetwork = %v, want %v", tt.body, s.PrivateNetwork, tt.want == "")
		}
	}
	def, err := Parse(DefaultFile, "default.toml")
	if err != nil {
		t.Fatal(err)
	}
	if needs := def.NetworkNeeds(); len(needs) != 0 {
		t.Errorf("the default file needs the network for %q, want none: it is the config that runs with PrivateNetwork=yes", needs)
	}
}

func TestSettings(t *testing.T) {
	s, err := parseCase(t, "ok_full").Settings(unitgen.DefaultPaths())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("Settings(ok_full).Validate() = %v, want nil", err)
	}
	if s.Database.URL != "postgresql://bitpoll@192.0.2.10:5432/bitpoll" || s.Email == nil || s.Email.Port != 587 || !s.Email.UseTLS ||
		s.Django["SITE_NAME"] != "Polls" || !s.SSLRedirect || s.MediaRoot != "/var/lib/bitpoll/media" || s.StaticRoot != "/opt/bitpoll/current/static" {
		t.Errorf("Settings(ok_full) = %+v, want the file's values", s)
	}
	d, err := parseCase(t, "ok_minimal").Settings(unitgen.DefaultPaths())
	if err != nil {
		t.Fatal(err)
	}
	if d.Database.Engine != "sqlite" || d.Database.Path != "/var/lib/bitpoll/db.sqlite3" || d.AllowedHosts != nil {
		t.Errorf("Settings(ok_minimal) = %+v, want SQLite in /var/lib/bitpoll and allowed hosts left to the shim (base_url's host)", d)
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		toml string
		want string // substring of the joined warnings; "" means none
	}{
		{`base_url = "http://localhost:8000"`, ""},
		{"base_url = \"http://x.example\"\n[outbound]\nallow = [\"any\"]", "outbound traffic is open to every address"},
		{"base_url = \"http://x.example\"\n[mail]\nhost = \"smtp.example.org\"", `mail.host "smtp.example.org" is a name`},
		{"base_url = \"http://x.example\"\n[database]\nurl = \"postgresql://bitpoll@db.example.org/bitpoll\"", `database host "db.example.org" is a name`},
	}
	for _, tt := range tests {
		c, err := Parse([]byte(tt.toml), "bitpoll.toml")
		if err != nil {
			t.Fatalf("Parse(%q) = %v", tt.toml, err)
		}
		got := strings.Join(c.Warnings(), "\n")
		if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
			t.Errorf("Warnings(%q) = %q, want %q", tt.toml, got, tt.want)
		}
		if open := strings.Contains(tt.toml, `"any"`); c.OutboundOpen() != open {
			t.Errorf("OutboundOpen(%q) = %v, want %v", tt.toml, c.OutboundOpen(), open)
		}
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"address", "port", "socket", "socket_group"}
	tests := []struct{ key, want string }{
		{"adress", "address"},
		{"Port", "port"},
		{"sockt", "socket"},
		{"socket_grp", "socket_group"},
		{"interface", ""},
		{"pt", ""},
	}
	for _, tt := range tests {
		if got := nearestKey(tt.key, known); got != tt.want {
			t.Errorf("nearestKey(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

// FuzzParse: Parse never panics, every failure is a list of *Error naming
// the file, and whatever it accepts renders to units.
func FuzzParse(f *testing.F) {
	f.Add(string(DefaultFile))
	paths, _ := filepath.Glob("testdata/parse/*.txtar")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		_, src, _ := strings.Cut(string(data), "-- bitpoll.toml --\n")
		src, _, _ = strings.Cut(src, "-- want --")
		f.Add(src)
	}
	f.Add("[listen]\nport = " + strconv.Itoa(1<<40))
	f.Fuzz(func(t *testing.T, src string) {
		c, err := Parse([]byte(src), "fuzz.toml")
		if err != nil {
			var list interface{ Unwrap() []error }
			errs := []error{err}
			if errors.As(err, &list) {
				errs = list.Unwrap()
			}
			for _, e := range errs {
				var ce *Error
				if !errors.As(e, &ce) || ce.File != "fuzz.toml" {
					t.Fatalf("Parse error %v (%T) is not an *Error naming the file", e, e)
				}
			}
			return
		}
		s, err := c.Spec(unitgen.DefaultPaths())
		if err != nil {
			t.Fatalf("Spec of a valid config: %v", err)
		}
		if _, err := unitgen.Render(s); err != nil {
			t.Fatalf("Render of a valid config: %v\n%s", err, src)
		}
		if _, err := c.Settings(unitgen.DefaultPaths()); err != nil {
			t.Fatalf("Settings of a valid config: %v", err)
		}
	})
}
