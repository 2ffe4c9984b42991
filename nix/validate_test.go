package nix

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/config"
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
	// The module's own forms: every address, and a unix socket.
	for _, c := range []struct{ addr, wantErr string }{
		{"", ""},
		{"/run/bitpoll/bitpoll.sock", ""},
		{"/run/bitpoll/my socket", "is not a usable unix socket path"},
		{"localhost", `"localhost" is not an IP address, and systemd's ListenStream= does not resolve names`},
	} {
		got := nixValidate(t, "listenAddressError", []string{c.addr})[0]
		if c.wantErr == "" && got != "" || c.wantErr != "" && !strings.Contains(got, c.wantErr) {
			t.Errorf("listenAddressError(%q) = %q, want %q", c.addr, got, c.wantErr)
		}
	}
}

// TestOutboundParity checks outboundAllow against the Go config's
// outbound.allow: the same entries taken and refused ("any" alone is the
// Go side's outboundAny).
func TestOutboundParity(t *testing.T) {
	got := nixValidate(t, "outboundError", outboundCases)
	for i, e := range outboundCases {
		goErr := goConfigErrors(t, "[outbound]\nallow = ["+strconv.Quote(e)+"]\n", "outbound.allow")
		if e == config.OutboundAny {
			// Go's ["any"] is the module's outboundAny = true.
			if goErr != "" || !strings.Contains(got[i], "outboundAny = true") {
				t.Errorf("outbound %q: module error %q, Go config error %q; want Go to take it and the module to point at outboundAny", e, got[i], goErr)
			}
			continue
		}
		if (got[i] == "") != (goErr == "") {
			t.Errorf("outbound %q: module error %q, Go config error %q; want both to accept or both to refuse", e, got[i], goErr)
		}
	}
}
