package nix

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/config"
	"github.com/bitpoll-install/bitpoll-install/unitgen"
)

// listenCases are listen addresses for TestListenAddressParity: IPv4,
// IPv6 in its forms, names and near misses.
var listenCases = []string{
	"127.0.0.1", "0.0.0.0", "192.0.2.255", "255.255.255.255",
	"256.0.0.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.-4", "1..2.3",
	"::", "::1", "fe80::1", "2001:db8::", "2001:DB8:0:0:0:0:0:1", "1:2:3:4:5:6:7:8",
	"1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "1::2::3", ":::", "12345::1", "::ffff:192.0.2.1",
	"1:2:3:4:5:6:192.0.2.1", "1:2:3:4:5:6:7:192.0.2.1", "g::1", "::1:",
	"localhost", "bitpoll.example.org", " 127.0.0.1", "127.0.0.1:8000", "[::1]",
}

// outboundCases are outbound.allow entries for TestOutboundParity.
var outboundCases = []string{
	"192.0.2.25", "192.0.2.0/24", "192.0.2.1/32", "10.0.0.0/8", "2001:db8::/32", "::1/128", "fe80::/10",
	"0.0.0.0/0", "::/0", "192.0.2.0/33", "::/129", "192.0.2.0/", "192.0.2.0/08", "any",
	"mail.example.org", "localhost", "192.0.2.0/24/1", "",
}

// nixValidate evaluates f of nix/validate.nix for each input; null comes
// back as "".
func nixValidate(t *testing.T, f string, inputs []string) []string {
	t.Helper()
	list, err := json.Marshal(inputs)
	if err != nil {
		t.Fatal(err)
	}
	expr := fmt.Sprintf(`let v = import %s; in map (x: let e = v.%s x; in if e == null then "" else e) (builtins.fromJSON %s)`,
		nixStr(repoRoot(t)+"/nix/validate.nix"), f, nixStr(string(list)))
	out, err := evalJSON(t, expr)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	if len(got) != len(inputs) {
		t.Fatalf("%s: %d answers for %d inputs", f, len(got), len(inputs))
	}
	return got
}

// goConfigErrors validates a config whose only settings are body and
// returns the messages of the errors at key.
func goConfigErrors(t *testing.T, body, key string) string {
	t.Helper()
	toml := "base_url = \"https://poll.example.org\"\nallowed_hosts = [\"poll.example.org\"]\n" + body
	c, err := config.Parse([]byte(toml), "bitpoll.toml")
	if err == nil {
		err = c.Validate()
	}
	if err == nil {
		return ""
	}
	var msgs []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if strings.Contains(l, key) {
			msgs = append(msgs, l)
		}
	}
	return strings.Join(msgs, "\n")
}

// TestListenAddressParity checks that the module takes the listen
// addresses that the Go config takes (listen.address), and refuses the
// others with a message.
func TestListenAddressParity(t *testing.T) {
	got := nixValidate(t, "listenAddressError", listenCases)
	for i, a := range listenCases {
		goErr := goConfigErrors(t, "[listen]\naddress = "+strconv.Quote(a)+"\nport = 8000\n", "listen.address")
		if (got[i] == "") != (goErr == "") {
			t.Errorf("listen address %q: module error %q, Go config error %q; want both to accept or both to refuse", a, got[i], goErr)
		}
	}
	// What the module says instead of Go's "not an IP address": where a
	// socket path goes, and how to say every address.
	for _, c := range []struct{ addr, wantErr string }{
		{"", `write "::" for every address`},
		{"/run/bitpoll/bitpoll.sock", "set listenSocket to it"},
		{"localhost", `"localhost" is not an IP address, and systemd's ListenStream= does not resolve names`},
	} {
		got := nixValidate(t, "listenAddressError", []string{c.addr})[0]
		if c.wantErr == "" && got != "" || c.wantErr != "" && !strings.Contains(got, c.wantErr) {
			t.Errorf("listenAddressError(%q) = %q, want %q", c.addr, got, c.wantErr)
		}
	}
}

// TestOutboundParity checks outboundAllow against the Go config's
// outbound.allow: the same entries taken and refused, and "any" only
// alone on both sides.
func TestOutboundParity(t *testing.T) {
	got := nixValidate(t, "outboundError", outboundCases)
	for i, e := range outboundCases {
		goErr := goConfigErrors(t, "[outbound]\nallow = ["+strconv.Quote(e)+"]\n", "outbound.allow")
		if (got[i] == "") != (goErr == "") {
			t.Errorf("outbound %q: module error %q, Go config error %q; want both to accept or both to refuse", e, got[i], goErr)
		}
	}
	lists := [][]string{{"any"}, {"any", "192.0.2.25"}, {"192.0.2.25", "any"}, {"192.0.2.25", "2001:db8::/32"}, {}}
	data, err := json.Marshal(lists)
	if err != nil {
		t.Fatal(err)
	}
	out, err := evalJSON(t, fmt.Sprintf(`let v = import %s; in map (l: let e = v.outboundListError l; in if e == null then "" else e) (builtins.fromJSON %s)`,
		nixStr(repoRoot(t)+"/nix/validate.nix"), nixStr(string(data))))
	if err != nil {
		t.Fatal(err)
	}
	var listGot []string
	if err := json.Unmarshal(out, &listGot); err != nil || len(listGot) != len(lists) {
		t.Fatalf("outboundListError: %s, %v; want %d answers", out, err, len(lists))
	}
	for i, l := range lists {
		body, _ := json.Marshal(l)
		goErr := goConfigErrors(t, "[outbound]\nallow = "+string(body)+"\n", "outbound.allow")
		if (listGot[i] == "") != (goErr == "") {
			t.Errorf("outbound list %q: module error %q, Go config error %q; want both to accept or both to refuse", l, listGot[i], goErr)
		}
	}
}

// TestListenSocketParity checks listenSocket against the Go config's
// listen.socket (and unitgen's rules for its path).
func TestListenSocketParity(t *testing.T) {
	cases := []string{
		"/run/bitpoll/bitpoll.sock", "/run/bitpoll.sock", "/", "/run/bitpoll/" + strings.Repeat("a", 94),
		"/run/bitpoll/" + strings.Repeat("a", 95), "run/bitpoll.sock", "/run//bitpoll.sock", "/run/./bitpoll.sock",
		"/run/../bitpoll.sock", "/run/bitpoll/", "/run/bitpoll/.", "/run/my socket", "/run/%n.sock", "/run/$X.sock", "/run/a:b",
	}
	got := nixValidate(t, "listenSocketError", cases)
	for i, p := range cases {
		toml := "base_url = \"http://localhost:8000\"\n[listen]\nsocket = " + strconv.Quote(p) + "\n"
		_, goErr := config.Parse([]byte(toml), "bitpoll.toml")
		if (got[i] == "") != (goErr == nil) {
			t.Errorf("listen socket %q: module error %q, Go config error %v; want both to accept or both to refuse", p, got[i], goErr)
		}
	}
}

// TestDatabaseURLParity checks database.url against the Go config's
// database.url: the same URLs taken and refused.
func TestDatabaseURLParity(t *testing.T) {
	cases := []string{
		"postgresql://bitpoll@localhost/bitpoll", "postgres://bitpoll@db.example.org:5432/bitpoll",
		"postgresql://bitpoll@/bitpoll?host=/run/postgresql", "postgresql:///bitpoll?host=/run/postgresql",
		"postgresql://[::1]:5432/bitpoll", "postgresql://bitpoll@localhost:05432/bitpoll",
		"postgresql://bitpoll:secret@localhost/bitpoll", "postgresql://bitpoll:@localhost/bitpoll",
		"postgresql://bitpoll@localhost/", "postgresql://bitpoll@localhost", "postgresql://bitpoll@/bitpoll",
		"postgresql://bitpoll@localhost:0/bitpoll", "postgresql://bitpoll@localhost:70000/bitpoll",
		"postgresql://bitpoll@localhost:54x/bitpoll",
		"sqlite:////var/lib/bitpoll/db.sqlite3", "sqlite:////var/lib/bitpoll/other/db.sqlite3",
		"sqlite:///var/lib/bitpoll/db.sqlite3", "sqlite:////tmp/db.sqlite3", "sqlite://host//var/lib/bitpoll/db",
		"mysql://bitpoll@localhost/bitpoll", "bitpoll", "localhost/bitpoll",
	}
	got := nixValidate(t, "databaseURLError", cases)
	for i, u := range cases {
		goErr := goConfigErrors(t, "[database]\nurl = "+strconv.Quote(u)+"\n", "database.url")
		if (got[i] == "") != (goErr == "") {
			t.Errorf("database url %q: module error %q, Go config error %q; want both to accept or both to refuse", u, got[i], goErr)
		}
	}
}

// networkNeedsCases are config bodies for TestNetworkNeedsParity.
var networkNeedsCases = []string{
	"",
	"[database]\nurl = \"sqlite:////var/lib/bitpoll/other.sqlite3\"",
	"[database]\nurl = \"postgresql://bitpoll@/bitpoll?host=/run/postgresql\"",
	"[database]\nurl = \"postgresql:///bitpoll?sslmode=disable&host=%2Frun%2Fpostgresql\"",
	"[database]\nurl = \"postgresql://bitpoll@/bitpoll?host=db.example.org\"\n[outbound]\nallow = [\"192.0.2.10\"]",
	"[database]\nurl = \"postgresql://bitpoll@localhost/bitpoll\"",
	"[database]\nurl = \"postgres://bitpoll@127.0.0.1:5432/bitpoll\"",
	"[mail]\nbackend = \"console\"",
	"[mail]\nbackend = \"smtp\"",
	"[mail]\nfrom = \"bitpoll@example.org\"",
	"[mail]\nhost = \"localhost\"",
	"[outbound]\nallow = [\"192.0.2.25\"]",
	"[outbound]\nallow = [\"any\"]",
	"[mail]\nhost = \"192.0.2.25\"\n[outbound]\nallow = [\"192.0.2.25\"]",
}

// nixNeedName is the module's option for each of the Go config's
// NetworkNeeds keys.
var nixNeedName = map[string]string{"mail": "settings.email", "database.url": "settings.database", "outbound.allow": "outboundAllow"}

// TestNetworkNeedsParity checks that the module gives its units
// PrivateNetwork=yes for the same configs as the Go side, and names the
// same reasons when it does not: each config's settings.json and outbound
// list go through nix/validate.nix's networkNeeds.
func TestNetworkNeedsParity(t *testing.T) {
	type args struct {
		Settings      json.RawMessage `json:"settings"`
		OutboundAllow []string        `json:"outboundAllow"`
	}
	var in []args
	var want []string
	for _, body := range networkNeedsCases {
		c, err := config.Parse([]byte("base_url = \"http://localhost:8000\"\n"+body), "bitpoll.toml")
		if err != nil {
			t.Fatalf("config %q: %v", body, err)
		}
		s, err := c.Settings(unitgen.DefaultPaths())
		if err != nil {
			t.Fatal(err)
		}
		data, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		in = append(in, args{Settings: data, OutboundAllow: append([]string{}, c.Outbound.Allow...)})
		var names []string
		for _, n := range c.NetworkNeeds() {
			names = append(names, nixNeedName[n])
		}
		want = append(want, strings.Join(names, ","))
	}
	list, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	expr := fmt.Sprintf(`let v = import %s; in map (a: builtins.concatStringsSep "," (v.networkNeeds a)) (builtins.fromJSON %s)`,
		nixStr(repoRoot(t)+"/nix/validate.nix"), nixStr(string(list)))
	out, err := evalJSON(t, expr)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	if len(got) != len(want) {
		t.Fatalf("networkNeeds: %d answers for %d configs", len(got), len(want))
	}
	for i, body := range networkNeedsCases {
		if got[i] != want[i] {
			t.Errorf("config %q: module's networkNeeds = %q, want the Go side's %q (empty: PrivateNetwork=yes)", body, got[i], want[i])
		}
	}
}

// TestDatabaseSocketDirParity checks that both sides show the service the
// same PostgreSQL socket directory for a database URL, or none.
func TestDatabaseSocketDirParity(t *testing.T) {
	cases := []string{
		"postgresql://bitpoll@/bitpoll?host=/run/postgresql",
		"postgresql:///bitpoll?sslmode=disable&host=%2Fvar%2Frun%2Fpg",
		"postgres://bitpoll@/bitpoll?host=/srv/pg&sslmode=disable",
		"postgresql://bitpoll@localhost/bitpoll",
		"postgresql://bitpoll@/bitpoll?host=db.example.org",
		"sqlite:////var/lib/bitpoll/db.sqlite3",
	}
	got := nixValidate(t, "databaseSocketDir", cases)
	for i, u := range cases {
		c, err := config.Parse([]byte("base_url = \"https://poll.example.org\"\n[database]\nurl = "+strconv.Quote(u)+"\n"), "bitpoll.toml")
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.Spec(unitgen.DefaultPaths())
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if got[i] != s.DatabaseSocketDir {
			t.Errorf("database url %q: the module shows socket directory %q, the Go units %q", u, got[i], s.DatabaseSocketDir)
		}
	}
}
