// Package config reads and checks the admin's /etc/bitpoll/bitpoll.toml and
// turns it into the shim's JSON settings and the units' Spec.
//
// Everything is checked before anything changes: each mistake names the
// file, the line where it is known, the key and the fix. Writing the
// settings file and the units is the installer's job.
package config

import (
	"github.com/bitpoll-install/bitpoll-install/layout"

	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/bitpoll-install/bitpoll-install/shim"
	"github.com/bitpoll-install/bitpoll-install/tomlpos"
	"github.com/bitpoll-install/bitpoll-install/unitgen"
)

// DefaultPath is where the admin's config lives.
const DefaultPath = layout.ConfigFile

// OutboundAny in outbound.allow opens outbound traffic to every address.
const OutboundAny = "any"

// Config is bitpoll.toml.
type Config struct {
	Listen             Listen         `toml:"listen"`
	BaseURL            string         `toml:"base_url"`
	AllowedHosts       []string       `toml:"allowed_hosts"`
	CSRFTrustedOrigins []string       `toml:"csrf_trusted_origins,omitempty"`
	Workers            int            `toml:"workers"`
	Timeout            int            `toml:"timeout"` // seconds
	TimeZone           string         `toml:"time_zone,omitempty"`
	LogLevel           string         `toml:"log_level,omitempty"`
	SecureProxyHeader  bool           `toml:"secure_proxy_ssl_header,omitempty"`
	SSLRedirect        bool           `toml:"ssl_redirect,omitempty"`
	Database           Database       `toml:"database"`
	Mail               *Mail          `toml:"mail,omitempty"`
	Outbound           Outbound       `toml:"outbound"`
	Django             map[string]any `toml:"django,omitempty"`

	file string        // for messages
	keys tomlpos.Index // where each key of the source is
}

// Listen is an address and port, or a unix socket for a reverse proxy.
type Listen struct {
	Address     string `toml:"address,omitempty"`
	Port        int    `toml:"port,omitempty"`
	Socket      string `toml:"socket,omitempty"`
	SocketGroup string `toml:"socket_group,omitempty"`
}

// Database is SQLite in the state directory when URL is empty.
type Database struct {
	URL string `toml:"url,omitempty"`
	// Password says the password is in the credential file db_password.
	Password bool `toml:"password,omitempty"`
}

// Mail configures outgoing mail; the password, if any, is the credential
// file email_password.
type Mail struct {
	Backend  string `toml:"backend,omitempty"`
	Host     string `toml:"host,omitempty"`
	Port     int    `toml:"port,omitempty"`
	User     string `toml:"user,omitempty"`
	Password bool   `toml:"password,omitempty"`
	UseTLS   bool   `toml:"use_tls,omitempty"`
	UseSSL   bool   `toml:"use_ssl,omitempty"`
	From     string `toml:"from,omitempty"`
}

// Outbound is where the service may connect beyond localhost.
type Outbound struct {
	Allow []string `toml:"allow"`
}

// Default is the config used when there is no file: the site on
// http://localhost:8000 with SQLite. It is what DefaultFile holds.
func Default() *Config {
	return &Config{
		Listen:       Listen{Address: "127.0.0.1", Port: 8000},
		BaseURL:      "http://localhost:8000",
		AllowedHosts: []string{"localhost"},
		Workers:      2,
		Timeout:      30,
		Outbound:     Outbound{Allow: []string{}},
		file:         "default config",
	}
}

// Error is one mistake in the config.
type Error struct {
	File string
	Line int // 0 when unknown
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	where := e.File
	if e.Line > 0 {
		where += ":" + strconv.Itoa(e.Line)
	}
	if e.Key == "" {
		return where + ": " + e.Msg
	}
	return where + ": " + e.Key + ": " + e.Msg
}

// Load reads and validates the config file at path. A missing file is an
// error that wraps os.ErrNotExist; WriteDefault makes one.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("read config: %w (write a default one with \"bitpoll-install install\", or pass another file)", err)
		}
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path)
}

// Parse reads a config from data, naming it file in messages, and
// validates it. listen, workers and timeout default to those of Default;
// base_url is required, and allowed_hosts defaults to base_url's host.
func Parse(data []byte, file string) (*Config, error) {
	c := &Config{file: file, keys: tomlpos.Parse(data)}
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, c.decodeError(err)
	}
	// Defaults go only where a key is absent, so that an explicit
	// "port = 0" is reported rather than replaced.
	var present map[string]any
	if err := toml.Unmarshal(data, &present); err != nil {
		return nil, c.decodeError(err)
	}
	listen, _ := present["listen"].(map[string]any)
	def := Default()
	if c.Listen.Socket == "" {
		if _, ok := listen["address"]; !ok {
			c.Listen.Address = def.Listen.Address
		}
		if _, ok := listen["port"]; !ok {
			c.Listen.Port = def.Listen.Port
		}
	}
	if _, ok := present["workers"]; !ok {
		c.Workers = def.Workers
	}
	if _, ok := present["timeout"]; !ok {
		c.Timeout = def.Timeout
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate checks everything that can be checked without touching the
// system, and returns every mistake, joined; each is an *Error.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, c.errorAt(key, fmt.Sprintf(format, args...)))
	}
	l := c.Listen
	if l.Socket != "" {
		if l.Address != "" || l.Port != 0 {
			bad("listen.socket", "cannot be combined with listen.address and listen.port; use a socket or an address and port")
		} else if !strings.HasPrefix(l.Socket, "/") {
			bad("listen.socket", "%q is not an absolute path; write it like \"/run/bitpoll/bitpoll.sock\"", l.Socket)
		}
	} else {
		if l.SocketGroup != "" {
			bad("listen.socket_group", "is only used with listen.socket; remove it or set listen.socket")
		}
		if l.Port < 1 || l.Port > 65535 {
			bad("listen.port", "%d is out of range; want 1 to 65535", l.Port)
		}
		if _, err := netip.ParseAddr(l.Address); err != nil {
			bad("listen.address", "%q is not an IP address; write it like \"127.0.0.1\" or \"::\" (systemd does not resolve names)", l.Address)
		}
	}
	if c.AllowedHosts != nil && len(c.AllowedHosts) == 0 {
		bad("allowed_hosts", `is empty, so Django would refuse every request; list the host names the site answers to, like ["poll.example.org"]`)
	} else if u, err := url.Parse(c.BaseURL); err == nil && u.Hostname() != "" && !c.HostAllowed(u.Hostname()) {
		bad("allowed_hosts", "does not include %q, the host of base_url, so Django would answer every request for base_url with 400 (Bad Request); add it: allowed_hosts = %s",
			u.Hostname(), tomlList(append(slices.Clone(c.AllowedHosts), u.Hostname())))
	}
	if c.Workers < 1 || c.Workers > 256 {
		bad("workers", "%d is out of range; want 1 to 256 (2 to 4 per CPU core is usual)", c.Workers)
	}
	if c.Timeout < 1 || c.Timeout > 3600 {
		bad("timeout", "%d is out of range; want 1 to 3600 seconds", c.Timeout)
	}
	dbBad := false
	if c.Database.URL != "" {
		if msg := checkDatabaseURL(c.Database.URL); msg != "" {
			bad("database.url", "%s", msg)
			dbBad = true
		}
	} else if c.Database.Password {
		bad("database.password", "is for PostgreSQL; set database.url or remove it")
	}
	if m := c.Mail; m != nil && m.Password && m.User == "" {
		bad("mail.password", "needs mail.user; set the user name the relay expects")
	}
	errs = append(errs, c.checkOutbound()...)
	if s, err := c.Settings(unitgen.DefaultPaths()); err == nil {
		for _, e := range c.shimErrors(s.Validate()) {
			// The shim's view of a bad URL repeats the one above.
			if dbBad && strings.HasPrefix(e.Key, "database.") {
				continue
			}
			errs = append(errs, e)
		}
	}
	if len(errs) == 0 {
		if _, err := c.Spec(unitgen.DefaultPaths()); err != nil {
			errs = append(errs, c.errorAt("", err.Error()))
		}
	}
	return errors.Join(errs...)
}

// checkDatabaseURL says what is wrong with a database URL, or "".
func checkDatabaseURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return fmt.Sprintf("%q is not a URL; write it like \"postgresql://bitpoll@localhost/bitpoll\"", raw)
	}
	if _, ok := u.User.Password(); ok {
		return "contains a password; remove it, put it in /etc/bitpoll/secrets/db_password and set database.password = true"
	}
	switch u.Scheme {
	case "postgres", "postgresql":
		if strings.Trim(u.Path, "/") == "" {
			return fmt.Sprintf("%q names no database; write it like \"postgresql://bitpoll@localhost/bitpoll\"", raw)
		}
		if u.Hostname() == "" && u.Query().Get("host") == "" {
			return fmt.Sprintf("%q names no host; give a host name or ?host=/run/postgresql for the local socket", raw)
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return fmt.Sprintf("%q has port %q; want 1 to 65535", raw, p)
			}
		}
	case "sqlite":
		if u.Host != "" || !strings.HasPrefix(u.Path, "//") {
			return fmt.Sprintf("%q is not an absolute SQLite URL; write sqlite:////var/lib/bitpoll/db.sqlite3 (four slashes), or leave database.url out for that default", raw)
		}
		if !strings.HasPrefix(u.Path[1:], unitgen.StateDir+"/") {
			return fmt.Sprintf("%q is outside %s, the only place the service may write; keep the database there", raw, unitgen.StateDir)
		}
	default:
		return fmt.Sprintf("%q has scheme %q; want postgresql:// or sqlite:////", raw, u.Scheme)
	}
	return ""
}

// checkOutbound validates outbound.allow and that the configured mail and
// database hosts, when given as addresses, are reachable through it.
func (c *Config) checkOutbound() []error {
	var errs []error
	allow, open, err := c.outbound()
	if err != nil {
		errs = append(errs, err)
	}
	if open {
		return errs
	}
	reachable := func(host string) bool {
		a, err := netip.ParseAddr(strings.Trim(host, "[]"))
		if err != nil {
			return true // a name: only a warning, see Warnings
		}
		if a.IsLoopback() {
			return true
		}
		for _, p := range allow {
			if p.Contains(a.Unmap()) {
				return true
			}
		}
		return false
	}
	if m := c.Mail; m != nil && m.Host != "" && !reachable(m.Host) {
		errs = append(errs, c.errorAt("mail.host", fmt.Sprintf("%q is not in outbound.allow, so the service could not reach it; add %q to outbound.allow", m.Host, m.Host)))
	}
	if u, err := url.Parse(c.Database.URL); err == nil && c.Database.URL != "" && u.Hostname() != "" && !reachable(u.Hostname()) {
		errs = append(errs, c.errorAt("database.url", fmt.Sprintf("host %q is not in outbound.allow, so the service could not reach it; add %q to outbound.allow", u.Hostname(), u.Hostname())))
	}
	return errs
}

// outbound parses outbound.allow.
func (c *Config) outbound() (allow []netip.Prefix, open bool, err error) {
	for i, s := range c.Outbound.Allow {
		key := fmt.Sprintf("outbound.allow[%d]", i)
		if s == OutboundAny {
			if len(c.Outbound.Allow) > 1 {
				return nil, false, c.errorAt(key, `"any" opens outbound to everything, so the other entries mean nothing; use ["any"] alone or addresses only`)
			}
			return nil, true, nil
		}
		p, perr := netip.ParsePrefix(s)
		if perr != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, false, c.errorAt(key, fmt.Sprintf(`%q is not an IP address or CIDR prefix; write it like "192.0.2.25" or "2001:db8::/64" (names cannot be allowed; use their addresses)`, s))
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Bits() == 0 {
			return nil, false, c.errorAt(key, fmt.Sprintf(`%q allows every address; write ["any"] to open outbound on purpose`, s))
		}
		allow = append(allow, p.Masked())
	}
	return allow, false, nil
}

// Warnings are things worth telling the admin that are not mistakes.
func (c *Config) Warnings() []string {
	var w []string
	if c.OutboundOpen() {
		w = append(w, unitgen.OutboundWarning)
		return w
	}
	name := func(host string) bool {
		_, err := netip.ParseAddr(strings.Trim(host, "[]"))
		return host != "" && host != "localhost" && err != nil
	}
	if m := c.Mail; m != nil && name(m.Host) {
		w = append(w, fmt.Sprintf("mail.host %q is a name: make sure its addresses are in outbound.allow, or the service cannot reach it", m.Host))
	}
	if u, err := url.Parse(c.Database.URL); err == nil && name(u.Hostname()) {
		w = append(w, fmt.Sprintf("the database host %q is a name: make sure its addresses are in outbound.allow, or the service cannot reach it", u.Hostname()))
	}
	return w
}

// NetworkNeeds lists what in this config connects out of the machine or to
// a server on it over TCP, each as its key: a mail host (any [mail] table
// but backend = "console": Django's SMTP default is localhost port 25), a
// database server over TCP, and outbound.allow, which lets CalDAV and
// anything else out. When the list is empty, the service runs with
// PrivateNetwork=yes: it keeps only a loopback device of its own, and
// serves through the listening socket that bitpoll.socket passes in.
func (c *Config) NetworkNeeds() []string {
	var needs []string
	if m := c.Mail; m != nil && m.Backend != "console" {
		needs = append(needs, "mail")
	}
	if c.Database.URL != "" && !databaseLocal(c.Database.URL) {
		needs = append(needs, "database.url")
	}
	if len(c.Outbound.Allow) > 0 {
		needs = append(needs, "outbound.allow")
	}
	return needs
}

// databaseLocal reports whether a database URL is reached without the
// network: SQLite, or PostgreSQL over a unix socket (no host, and a host
// query parameter that is a socket directory).
func databaseLocal(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "sqlite":
		return true
	case "postgres", "postgresql":
		return u.Hostname() == "" && strings.HasPrefix(u.Query().Get("host"), "/")
	}
	return false
}

// databaseSocketDir is the socket directory a PostgreSQL URL's host
// parameter names, or "" for none: the service must see it to connect.
func databaseSocketDir(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return ""
	}
	if h := u.Query().Get("host"); strings.HasPrefix(h, "/") {
		return h
	}
	return ""
}

// OutboundOpen reports whether outbound traffic is open to every address.
func (c *Config) OutboundOpen() bool {
	_, open, _ := c.outbound()
	return open
}

// listenString is the Spec form of the listen table.
func (c *Config) listenString() string {
	if c.Listen.Socket != "" {
		return c.Listen.Socket
	}
	return net.JoinHostPort(c.Listen.Address, strconv.Itoa(c.Listen.Port))
}

// CheckPortFree fails if the configured TCP address and port are taken.
// The caller skips it when bitpoll.socket already holds them: that is
// Bitpoll itself, and the check would always fail.
func (c *Config) CheckPortFree() error {
	if c.Listen.Socket != "" {
		return nil
	}
	addr := c.listenString()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return c.errorAt("listen.port", fmt.Sprintf("%s is not free (%v); stop what holds it (ss -ltnp shows it) or choose another listen.port", addr, errors.Unwrap(err)))
	}
	ln.Close()
	return nil
}

// Settings is the shim's JSON settings for this config.
func (c *Config) Settings(p unitgen.Paths) (shim.Settings, error) {
	s := shim.Settings{
		BaseURL:              c.BaseURL,
		AllowedHosts:         c.AllowedHosts,
		CSRFTrustedOrigins:   c.CSRFTrustedOrigins,
		StaticRoot:           filepath.Join(p.Current, "static"),
		MediaRoot:            unitgen.StateDir + "/media",
		TimeZone:             c.TimeZone,
		LogLevel:             c.LogLevel,
		SecureProxySSLHeader: c.SecureProxyHeader,
		SSLRedirect:          c.SSLRedirect,
		Django:               c.Django,
		Database:             shim.Database{Engine: "sqlite", Path: unitgen.StateDir + "/db.sqlite3"},
	}
	if c.Database.URL != "" {
		s.Database = shim.Database{URL: c.Database.URL}
	}
	if m := c.Mail; m != nil {
		s.Email = &shim.Email{Backend: m.Backend, Host: m.Host, Port: m.Port, User: m.User, UseTLS: m.UseTLS, UseSSL: m.UseSSL, From: m.From}
	}
	return s, nil
}

// Spec is the units' Spec for this config, on the paths p.
func (c *Config) Spec(p unitgen.Paths) (unitgen.Spec, error) {
	allow, open, err := c.outbound()
	if err != nil {
		return unitgen.Spec{}, err
	}
	creds := append([]string(nil), unitgen.RequiredCredentials...)
	if c.Database.Password {
		creds = append(creds, shim.DBPasswordFile)
	}
	if c.Mail != nil && c.Mail.Password {
		creds = append(creds, shim.EmailPasswordFile)
	}
	settings, err := c.Settings(p)
	if err != nil {
		return unitgen.Spec{}, err
	}
	s := unitgen.Spec{
		// The socket's generation is the installer's to set; 1 renders a
		// valid preview.
		Generation:        1,
		DatabaseStamp:     settings.Database.Stamp(),
		Listen:            c.listenString(),
		SocketGroup:       c.Listen.SocketGroup,
		Workers:           c.Workers,
		Timeout:           time.Duration(c.Timeout) * time.Second,
		Project:           "bitpoll",
		Paths:             p,
		Credentials:       creds,
		OutboundAllow:     allow,
		OutboundAny:       open,
		PrivateNetwork:    len(c.NetworkNeeds()) == 0,
		DatabaseSocketDir: databaseSocketDir(c.Database.URL),
	}
	if err := s.Validate(); err != nil {
		return unitgen.Spec{}, fmt.Errorf("config %s: %w", c.file, err)
	}
	return s, nil
}

// shimKeys maps the shim's JSON key prefixes to this file's keys.
var shimKeys = []struct{ json, toml string }{
	{"database.", "database.url"},
	{"email.", "mail."},
}

// shimErrors turns the shim's KeyErrors into errors naming TOML keys.
func (c *Config) shimErrors(err error) []*Error {
	if err == nil {
		return nil
	}
	var out []*Error
	var list interface{ Unwrap() []error }
	errs := []error{err}
	if errors.As(err, &list) {
		errs = list.Unwrap()
	}
	for _, e := range errs {
		var ke *shim.KeyError
		if !errors.As(e, &ke) {
			out = append(out, c.errorAt("", e.Error()))
			continue
		}
		key := ke.Key
		for _, m := range shimKeys {
			if strings.HasPrefix(key, m.json) {
				if strings.HasSuffix(m.toml, ".") {
					key = m.toml + strings.TrimPrefix(key, m.json)
				} else {
					key = m.toml
				}
				break
			}
		}
		out = append(out, c.errorAt(key, ke.Msg))
	}
	return out
}

// errorAt makes an *Error for key, with the line the key is on if the
// source has it.
func (c *Config) errorAt(key, msg string) *Error {
	return &Error{File: c.file, Line: c.keys.Line(key), Key: key, Msg: msg}
}

// HostAllowed reports whether Django lets requests for host through
// ALLOWED_HOSTS as this config sets it (allowed_hosts, or base_url's host
// when it is absent): an exact match, ignoring case; "*"; or ".domain",
// which matches the domain and every subdomain.
func (c *Config) HostAllowed(host string) bool {
	hosts := c.AllowedHosts
	if hosts == nil {
		if u, err := url.Parse(c.BaseURL); err == nil {
			hosts = []string{u.Hostname()}
		}
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, h := range hosts {
		h = strings.ToLower(h)
		switch {
		case h == "*", h == host:
			return true
		case strings.HasPrefix(h, ".") && (host == h[1:] || strings.HasSuffix(host, h)):
			return true
		}
	}
	return false
}

// CheckServerName refuses a name a proxy would send requests for that
// Django would answer with 400.
func (c *Config) CheckServerName(name string) error {
	if c.HostAllowed(name) {
		return nil
	}
	return fmt.Errorf("server name %q is not in allowed_hosts of %s, so Django would answer nginx's requests for it with 400 (Bad Request): add it to allowed_hosts, or give another --server-name", name, c.file)
}

// tomlList writes strings as a TOML array.
func tomlList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
