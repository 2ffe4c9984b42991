// Package shim holds the settings shim: the settings_local.py that a Django
// project's settings.py star-imports, which reads a JSON settings file and
// the secrets, and the Go type that writes that JSON file.
//
// The JSON keys and the rules in Validate mirror those in settings_local.py,
// which the NixOS module copies as well; a shared test corpus keeps the Go
// and Python sides in step. Putting the shim into an app tree is the store's
// job, not this package's.
package shim

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// SettingsLocal is the shim, to be written as <project>/settings_local.py.
//
//go:embed settings_local.py
var SettingsLocal []byte

// GunicornConf is gunicorn's configuration for every generation: it warms
// the app in the master before the workers fork. It goes with the units,
// not into a store path, so that generations built before it run with it
// too.
//
//go:embed gunicorn.conf.py
var GunicornConf []byte

// Environment variables and credential file names the shim reads.
const (
	SettingsFileEnv = "BITPOLL_SETTINGS_FILE" // path of the JSON settings file
	SecretsDirEnv   = "BITPOLL_SECRETS_DIR"   // used when $CREDENTIALS_DIRECTORY is unset
	StaticRootEnv   = "BITPOLL_STATIC_ROOT"   // a generation's own static files, over static_root
	CredentialsEnv  = "CREDENTIALS_DIRECTORY" // set by systemd for LoadCredential=

	SecretKeyFile          = "secret_key"           // required
	FieldEncryptionKeyFile = "field_encryption_key" // required
	DBPasswordFile         = "db_password"          // optional
	EmailPasswordFile      = "email_password"       // optional
)

// MigrateLockKey is the PostgreSQL advisory lock that a migrate process
// takes through the shim (its MIGRATE_LOCK_KEY: "bitpoll" read as a
// big-endian integer), so that app hosts sharing a database migrate one
// at a time.
const MigrateLockKey int64 = 0x626974706f6c6c

// DefaultHSTSSeconds is the shim's HSTS max-age for an https base_url when
// hsts_seconds is not set.
const DefaultHSTSSeconds = 31536000

// Settings is the JSON settings file. Zero values mean "the shim's default".
type Settings struct {
	// BaseURL is the public URL, like "https://poll.example.org". Its
	// origin is always a CSRF trusted origin; https turns on secure cookies
	// and HSTS.
	BaseURL string `json:"base_url"`
	// AllowedHosts defaults to the host of BaseURL.
	AllowedHosts       []string `json:"allowed_hosts,omitempty"`
	CSRFTrustedOrigins []string `json:"csrf_trusted_origins,omitempty"`
	Database           Database `json:"database"`
	StaticRoot         string   `json:"static_root"`
	MediaRoot          string   `json:"media_root"`
	Debug              bool     `json:"debug,omitempty"`
	TimeZone           string   `json:"time_zone,omitempty"`
	Email              *Email   `json:"email,omitempty"`
	// SecureProxySSLHeader trusts X-Forwarded-Proto: https; set it only
	// behind a proxy that always sets that header.
	SecureProxySSLHeader bool `json:"secure_proxy_ssl_header,omitempty"`
	// SSLRedirect makes Django redirect http to https; it needs
	// SecureProxySSLHeader.
	SSLRedirect bool `json:"ssl_redirect,omitempty"`
	// HSTSSeconds nil means DefaultHSTSSeconds for https; 0 sends no header.
	HSTSSeconds *int `json:"hsts_seconds,omitempty"`
	// HSTSIncludeSubdomains nil means true.
	HSTSIncludeSubdomains *bool `json:"hsts_include_subdomains,omitempty"`
	HSTSPreload           bool  `json:"hsts_preload,omitempty"`
	// WhiteNoise nil means "use it if installed", true requires it.
	WhiteNoise *bool `json:"whitenoise,omitempty"`
	// StaticStorage replaces the project's staticfiles storage backend.
	StaticStorage string `json:"static_storage,omitempty"`
	LogLevel      string `json:"log_level,omitempty"`
	// Django holds further settings, set verbatim; names are UPPERCASE.
	Django map[string]any `json:"django,omitempty"`
}

// Database is either a URL or the engine and its fields. Passwords never
// go here: the shim reads the credential file db_password.
type Database struct {
	URL    string `json:"url,omitempty"`    // postgresql://user@host:port/name or sqlite:////abs/path
	Engine string `json:"engine,omitempty"` // "sqlite" or "postgresql"
	Path   string `json:"path,omitempty"`   // sqlite
	Name   string `json:"name,omitempty"`   // postgresql
	User   string `json:"user,omitempty"`
	Host   string `json:"host,omitempty"` // a host name or a socket directory
	Port   int    `json:"port,omitempty"`
}

// Email configures outgoing mail; the password is the credential file
// email_password.
type Email struct {
	Backend string `json:"backend,omitempty"` // "smtp" (default) or "console"
	Host    string `json:"host,omitempty"`
	Port    int    `json:"port,omitempty"`
	User    string `json:"user,omitempty"`
	UseTLS  bool   `json:"use_tls,omitempty"`
	UseSSL  bool   `json:"use_ssl,omitempty"`
	From    string `json:"from,omitempty"`
}

// KeyError is a bad value in Settings; Key is the JSON key path, like
// "database.path" or "allowed_hosts[1]".
type KeyError struct {
	Key string
	Msg string
}

func (e *KeyError) Error() string { return "settings: " + e.Key + ": " + e.Msg }

var (
	settingName = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	dottedPath  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$`)
	logLevels   = []string{"CRITICAL", "DEBUG", "ERROR", "INFO", "WARNING"}
)

// Validate checks s by the shim's rules and returns every problem found,
// joined; each is a *KeyError.
func (s *Settings) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &KeyError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}

	if s.BaseURL == "" {
		bad("base_url", `missing; set it to the public URL, e.g. "https://poll.example.org"`)
	} else if u, err := url.Parse(s.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		bad("base_url", `%q is not an absolute http(s) URL; write it like "https://poll.example.org"`, s.BaseURL)
	} else if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		bad("base_url", "%q has user info, a query or a fragment; give only scheme, host, port and path", s.BaseURL)
	}

	for i, h := range s.AllowedHosts {
		key := fmt.Sprintf("allowed_hosts[%d]", i)
		switch {
		case h == "":
			bad(key, "is empty; give a host name like \"poll.example.org\"")
		case strings.Contains(h, "/") || strings.TrimSpace(h) != h || (strings.Contains(h, ":") && !strings.HasPrefix(h, "[")):
			bad(key, "%q is not a host name; drop the scheme, port and path", h)
		}
	}
	for i, o := range s.CSRFTrustedOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			bad(fmt.Sprintf("csrf_trusted_origins[%d]", i), `%q is not an origin; write it like "https://poll.example.org"`, o)
		}
	}

	errs = append(errs, s.Database.validate()...)
	for _, p := range []struct{ key, val string }{{"static_root", s.StaticRoot}, {"media_root", s.MediaRoot}} {
		if p.val == "" {
			bad(p.key, "missing; set it to an absolute path")
		} else if !isAbs(p.val) {
			bad(p.key, "%q is not an absolute path; give the full path", p.val)
		}
	}
	if s.Email != nil {
		errs = append(errs, s.Email.validate()...)
	}
	if s.SSLRedirect && !s.SecureProxySSLHeader {
		bad("ssl_redirect", "needs secure_proxy_ssl_header true; behind a TLS proxy Django sees plain http and would redirect forever")
	}
	if s.HSTSSeconds != nil && *s.HSTSSeconds < 0 {
		bad("hsts_seconds", "%d is negative; use 0 to send no HSTS header", *s.HSTSSeconds)
	}
	if s.StaticStorage != "" && !dottedPath.MatchString(s.StaticStorage) {
		bad("static_storage", `%q is not a dotted class path; write it like "whitenoise.storage.CompressedManifestStaticFilesStorage"`, s.StaticStorage)
	}
	if s.LogLevel != "" && !slices.Contains(logLevels, s.LogLevel) {
		bad("log_level", "%q is not a level; want one of %s", s.LogLevel, strings.Join(logLevels, ", "))
	}
	for _, name := range slices.Sorted(maps.Keys(s.Django)) {
		switch {
		case !settingName.MatchString(name):
			bad("django."+name, `is not a Django setting name; names are UPPERCASE like "SITE_NAME"`)
		case name == "SECRET_KEY" || name == "FIELD_ENCRYPTION_KEY":
			bad("django."+name, "must not be in the settings file; it is read from the credential file %s", strings.ToLower(name))
		}
	}
	return errors.Join(errs...)
}

func (d *Database) validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &KeyError{Key: "database." + key, Msg: fmt.Sprintf(format, args...)})
	}
	db := *d
	if d.URL != "" {
		if d.Engine != "" || d.Path != "" || d.Name != "" || d.User != "" || d.Host != "" || d.Port != 0 {
			bad("url", "cannot be combined with engine, path, name, user, host or port; use one form")
			return errs
		}
		var err error
		if db, err = parseDatabaseURL(d.URL); err != nil {
			return append(errs, err)
		}
	}
	switch db.Engine {
	case "sqlite":
		for _, f := range []struct {
			key string
			set bool
		}{{"name", db.Name != ""}, {"user", db.User != ""}, {"host", db.Host != ""}, {"port", db.Port != 0}} {
			if f.set {
				bad(f.key, "is not used with sqlite; remove it and set database.path")
			}
		}
		if db.Path == "" {
			bad("path", "missing; set it to an absolute path")
		} else if !isAbs(db.Path) {
			bad("path", "%q is not an absolute path; give the full path", db.Path)
		}
	case "postgresql":
		if db.Path != "" {
			bad("path", "is for sqlite; with postgresql set database.name")
		}
		if db.Name == "" {
			bad("name", "missing; set the postgresql database name")
		}
		if db.Port < 0 || db.Port > 65535 {
			bad("port", "%d is out of range; want 1 to 65535", db.Port)
		}
	case "":
		bad("engine", `missing; set {"engine": "sqlite", "path": ...} or {"url": ...}`)
	default:
		bad("engine", `%q is not supported; want "sqlite" or "postgresql"`, db.Engine)
	}
	return errs
}

// parseDatabaseURL turns a database URL into the field form, as the shim does.
func parseDatabaseURL(raw string) (Database, error) {
	bad := func(format string, args ...any) (Database, error) {
		return Database{}, &KeyError{Key: "database.url", Msg: fmt.Sprintf(format, args...)}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("%q is not a URL; write it like \"postgresql://bitpoll@localhost/bitpoll\"", raw)
	}
	if _, ok := u.User.Password(); ok {
		return bad("contains a password; remove it and put it in the credential file %s", DBPasswordFile)
	}
	switch u.Scheme {
	case "sqlite":
		if u.Host != "" {
			return bad("%q has a host; write sqlite:////abs/path (three slashes, then the path)", raw)
		}
		// As in SQLAlchemy, the path follows the third slash:
		// sqlite:////var/lib/db is absolute, sqlite:///db is relative.
		return Database{Engine: "sqlite", Path: strings.TrimPrefix(u.Path, "/")}, nil
	case "postgres", "postgresql":
		db := Database{Engine: "postgresql", Name: strings.TrimPrefix(u.Path, "/"), User: u.User.Username(), Host: u.Hostname()}
		if h := u.Query()["host"]; len(h) > 0 {
			db.Host = h[len(h)-1]
		}
		if p := u.Port(); p != "" {
			if _, err := fmt.Sscanf(p, "%d", &db.Port); err != nil || db.Port < 1 || db.Port > 65535 {
				return bad("%q has a bad port; want 1 to 65535", raw)
			}
		}
		return db, nil
	}
	return bad("%q has scheme %q; want postgresql:// or sqlite:///", raw, u.Scheme)
}

func (e *Email) validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &KeyError{Key: "email." + key, Msg: fmt.Sprintf(format, args...)})
	}
	if e.Backend != "" && e.Backend != "smtp" && e.Backend != "console" {
		bad("backend", `%q is not supported; want "smtp" or "console"`, e.Backend)
	}
	if e.Port < 0 || e.Port > 65535 {
		bad("port", "%d is out of range; want 1 to 65535", e.Port)
	}
	if e.UseTLS && e.UseSSL {
		bad("use_ssl", "cannot be combined with email.use_tls; STARTTLS (use_tls) or TLS from the start (use_ssl), not both")
	}
	if e.From != "" && !strings.Contains(e.From, "@") {
		bad("from", `%q is not a mail address; write it like "bitpoll@example.org"`, e.From)
	}
	return errs
}

// Marshal validates s and returns it as the indented JSON settings file.
// The output is byte-stable: map keys are sorted.
func (s *Settings) Marshal() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal settings: %w", err)
	}
	return append(b, '\n'), nil
}

// Parse reads a JSON settings file, refusing unknown keys, and validates it.
func Parse(data []byte) (*Settings, error) {
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		return nil, errors.New("parse settings: the file must hold one JSON object, {...}")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s Settings
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("parse settings: %w", err)
	}
	if dec.More() {
		return nil, errors.New("parse settings: trailing data after the JSON object; the file must hold one object")
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// isAbs reports whether p is absolute on the target, a POSIX system,
// whatever the system the installer runs on.
func isAbs(p string) bool { return strings.HasPrefix(p, "/") }

// Stamp names these database settings in a migration stamp: the first 12
// hex digits of the sha256 of their JSON with sorted keys and nothing
// escaped, which is what Nix's builtins.toJSON writes of the same
// attribute set, so the NixOS module's stamps and the installer's agree.
// Another database (SQLite → PostgreSQL) has another stamp, and migrates.
func (d Database) Stamp() string {
	b, _ := json.Marshal(d) // plain strings and an int always marshal
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(m) // map keys are written sorted
	sum := sha256.Sum256(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	return hex.EncodeToString(sum[:])[:12]
}
