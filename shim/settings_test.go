package shim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
)

func validSettings() Settings {
	return Settings{
		BaseURL:    "https://poll.example.org",
		Database:   Database{Engine: "sqlite", Path: "/var/lib/bitpoll/db.sqlite3"},
		StaticRoot: "/opt/bitpoll/static",
		MediaRoot:  "/var/lib/bitpoll/media",
	}
}

func ptr[T any](v T) *T { return &v }

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*Settings)
		wantKey string // "" means valid
	}{
		{"minimal", func(*Settings) {}, ""},
		{"http base url", func(s *Settings) { s.BaseURL = "http://127.0.0.1:8000/" }, ""},
		{"postgres fields", func(s *Settings) {
			s.Database = Database{Engine: "postgresql", Name: "bitpoll", Host: "/run/postgresql", Port: 5432}
		}, ""},
		{"postgres url", func(s *Settings) { s.Database = Database{URL: "postgres://bitpoll@db:5432/bitpoll"} }, ""},
		{"sqlite url", func(s *Settings) { s.Database = Database{URL: "sqlite:////var/lib/bitpoll/db.sqlite3"} }, ""},
		{"ipv6 host", func(s *Settings) { s.AllowedHosts = []string{"[::1]"} }, ""},
		{"wildcard origin", func(s *Settings) { s.CSRFTrustedOrigins = []string{"https://*.example.org"} }, ""},
		{"hsts off", func(s *Settings) { s.HSTSSeconds = ptr(0) }, ""},
		{"redirect behind proxy", func(s *Settings) { s.SSLRedirect, s.SecureProxySSLHeader = true, true }, ""},
		{"django extras", func(s *Settings) { s.Django = map[string]any{"SITE_NAME": "Polls", "PUBLIC_POLLS": false} }, ""},
		{"email", func(s *Settings) { s.Email = &Email{Host: "mail", Port: 465, UseSSL: true, From: "a@b.org"} }, ""},

		{"no base url", func(s *Settings) { s.BaseURL = "" }, "base_url"},
		{"base url without scheme", func(s *Settings) { s.BaseURL = "poll.example.org" }, "base_url"},
		{"base url with user", func(s *Settings) { s.BaseURL = "https://u@poll.example.org" }, "base_url"},
		{"base url with fragment", func(s *Settings) { s.BaseURL = "https://poll.example.org/#x" }, "base_url"},
		{"host with scheme", func(s *Settings) { s.AllowedHosts = []string{"https://poll.example.org"} }, "allowed_hosts[0]"},
		{"host with port", func(s *Settings) { s.AllowedHosts = []string{"ok.org", "poll.example.org:443"} }, "allowed_hosts[1]"},
		{"host with space", func(s *Settings) { s.AllowedHosts = []string{" poll.example.org"} }, "allowed_hosts[0]"},
		{"origin with path", func(s *Settings) { s.CSRFTrustedOrigins = []string{"https://a.org/x"} }, "csrf_trusted_origins[0]"},
		{"no engine", func(s *Settings) { s.Database = Database{} }, "database.engine"},
		{"bad engine", func(s *Settings) { s.Database = Database{Engine: "mysql", Name: "x"} }, "database.engine"},
		{"relative sqlite", func(s *Settings) { s.Database.Path = "db.sqlite3" }, "database.path"},
		{"sqlite with user", func(s *Settings) { s.Database.User = "bitpoll" }, "database.user"},
		{"postgres without name", func(s *Settings) { s.Database = Database{Engine: "postgresql"} }, "database.name"},
		{"postgres port", func(s *Settings) { s.Database = Database{Engine: "postgresql", Name: "n", Port: 65536} }, "database.port"},
		{"url and engine", func(s *Settings) { s.Database.URL = "sqlite:////db" }, "database.url"},
		{"url password", func(s *Settings) { s.Database = Database{URL: "postgresql://u:pw@h/n"} }, "database.url"},
		{"url scheme", func(s *Settings) { s.Database = Database{URL: "mysql://h/n"} }, "database.url"},
		{"url port", func(s *Settings) { s.Database = Database{URL: "postgresql://h:0/n"} }, "database.url"},
		{"relative sqlite url", func(s *Settings) { s.Database = Database{URL: "sqlite:///db.sqlite3"} }, "database.path"},
		{"no static root", func(s *Settings) { s.StaticRoot = "" }, "static_root"},
		{"relative media root", func(s *Settings) { s.MediaRoot = "media" }, "media_root"},
		{"redirect without proxy", func(s *Settings) { s.SSLRedirect = true }, "ssl_redirect"},
		{"negative hsts", func(s *Settings) { s.HSTSSeconds = ptr(-1) }, "hsts_seconds"},
		{"tls and ssl", func(s *Settings) { s.Email = &Email{UseTLS: true, UseSSL: true} }, "email.use_ssl"},
		{"mail backend", func(s *Settings) { s.Email = &Email{Backend: "sendmail"} }, "email.backend"},
		{"mail from", func(s *Settings) { s.Email = &Email{From: "Bitpoll"} }, "email.from"},
		{"static storage", func(s *Settings) { s.StaticStorage = "Storage" }, "static_storage"},
		{"log level", func(s *Settings) { s.LogLevel = "verbose" }, "log_level"},
		{"lowercase django name", func(s *Settings) { s.Django = map[string]any{"debug": true} }, "django.debug"},
		{"secret in django", func(s *Settings) { s.Django = map[string]any{"FIELD_ENCRYPTION_KEY": "k"} }, "django.FIELD_ENCRYPTION_KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSettings()
			tt.edit(&s)
			err := s.Validate()
			if got := errorKeys(err); tt.wantKey == "" && len(got) > 0 || tt.wantKey != "" && !reflect.DeepEqual(got, []string{tt.wantKey}) {
				b, _ := json.Marshal(s)
				t.Fatalf("Validate(%s) = %v, want error keys %q", b, err, tt.wantKey)
			}
		})
	}
}

// errorKeys lists the keys of the *KeyErrors joined in err.
func errorKeys(err error) []string {
	if err == nil {
		return nil
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var keys []string
	for _, e := range errs {
		var ke *KeyError
		if !errors.As(e, &ke) {
			return append(keys, "not a KeyError: "+e.Error())
		}
		keys = append(keys, ke.Key)
	}
	return keys
}

func TestValidateReportsAll(t *testing.T) {
	s := Settings{BaseURL: "x", Database: Database{Engine: "sqlite"}}
	got := errorKeys(s.Validate())
	want := []string{"base_url", "database.path", "static_root", "media_root"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Validate(empty) keys = %q, want %q", got, want)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	s := validSettings()
	s.HSTSSeconds = ptr(0)
	s.WhiteNoise = ptr(false)
	s.Email = &Email{Host: "mail.example.org", Port: 587, UseTLS: true}
	s.Django = map[string]any{"SITE_NAME": "Polls", "A_LIST": []any{"x"}}
	b, err := s.Marshal()
	if err != nil {
		t.Fatalf("Marshal() error: %v", err)
	}
	again, err := s.Marshal()
	if err != nil || !bytes.Equal(b, again) {
		t.Fatalf("Marshal() is not byte-stable:\n%s\n%s", b, again)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse(Marshal()) error: %v\n%s", err, b)
	}
	if !reflect.DeepEqual(*got, s) {
		t.Fatalf("Parse(Marshal(s)) = %+v, want %+v", *got, s)
	}
	// A pointer set to its zero value must survive: hsts_seconds 0 differs
	// from "unset".
	if !bytes.Contains(b, []byte(`"hsts_seconds": 0`)) {
		t.Fatalf("Marshal() = %s, want hsts_seconds 0 kept", b)
	}
}

func TestMarshalRefusesInvalid(t *testing.T) {
	s := validSettings()
	s.StaticRoot = "static"
	if b, err := s.Marshal(); err == nil {
		t.Fatalf("Marshal(relative static_root) = %s, want an error", b)
	}
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{"", "[]", `{"base_url": 1}`, `{} {}`, `{"nope": 1}`} {
		if s, err := Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", in, s)
		}
	}
}

func TestSettingsLocalEmbedded(t *testing.T) {
	disk, err := os.ReadFile("settings_local.py")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(SettingsLocal, disk) || len(SettingsLocal) == 0 {
		t.Fatalf("SettingsLocal has %d bytes, want the %d bytes of settings_local.py", len(SettingsLocal), len(disk))
	}
}

// A case file is JSON after header lines starting with '#':
//
//	# wantErr: KEY        the Go and Python sides both fail, naming KEY
//	# want NAME: JSON     the shim sets NAME to this value
type settingsCase struct {
	file    string
	body    []byte
	wantErr string
	want    map[string]string
}

func readCases(t *testing.T) []settingsCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "cases", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no case files in testdata/cases: %v", err)
	}
	var cases []settingsCase
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c := settingsCase{file: f, want: map[string]string{}}
		var body bytes.Buffer
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "# wantErr: "):
				c.wantErr = strings.TrimPrefix(line, "# wantErr: ")
			case strings.HasPrefix(line, "# want "):
				name, val, ok := strings.Cut(strings.TrimPrefix(line, "# want "), ": ")
				if !ok {
					t.Fatalf("%s: bad header %q, want \"# want NAME: JSON\"", f, line)
				}
				c.want[name] = val
			case strings.HasPrefix(line, "#"):
			default:
				body.WriteString(line + "\n")
			}
		}
		c.body = body.Bytes()
		if strings.HasPrefix(filepath.Base(f), "bad-") != (c.wantErr != "") {
			t.Fatalf("%s: files named bad-* and only they need a wantErr header", f)
		}
		cases = append(cases, c)
	}
	return cases
}

func TestParseCases(t *testing.T) {
	for _, c := range readCases(t) {
		_, err := Parse(c.body)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("Parse(%s) = %v, want no error", c.file, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("Parse(%s) = %v, want an error naming %q", c.file, err, c.wantErr)
		}
	}
}

// caseResult is one line of run_cases.py output.
type caseResult struct {
	Case     string                     `json:"case"`
	Error    *string                    `json:"error"`
	Settings map[string]json.RawMessage `json:"settings"`
}

// TestShimCases runs the Python shim on the same case files, against a
// stand-in for Django, so both sides agree on every rule.
func TestShimCases(t *testing.T) {
	python := lookPython(t)
	cases := readCases(t)
	secrets := writeSecrets(t, map[string]string{
		SecretKeyFile:          "test-secret-key",
		FieldEncryptionKeyFile: "test-field-key",
	})
	args := []string{filepath.Join("testdata", "run_cases.py"), "settings_local.py"}
	for _, c := range cases {
		args = append(args, c.file)
	}
	cmd := exec.Command(python, args...)
	cmd.Env = stubEnv(t, SecretsDirEnv+"="+secrets)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run_cases.py: %v\n%s", err, stderrOf(err))
	}
	var results []caseResult
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var r caseResult
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("decode run_cases.py output: %v\n%s", err, out)
		}
		results = append(results, r)
	}
	if len(results) != len(cases) {
		t.Fatalf("run_cases.py gave %d results, want %d:\n%s", len(results), len(cases), out)
	}
	for i, c := range cases {
		r := results[i]
		if c.wantErr != "" {
			if r.Error == nil || !strings.Contains(*r.Error, c.wantErr) || !strings.Contains(*r.Error, "ImproperlyConfigured") {
				t.Errorf("shim(%s) error = %v, want ImproperlyConfigured naming %q", c.file, deref(r.Error), c.wantErr)
			}
			continue
		}
		if r.Error != nil {
			t.Errorf("shim(%s) error = %s, want none", c.file, *r.Error)
			continue
		}
		for name, want := range c.want {
			got, ok := r.Settings[name]
			if !ok || !jsonEqual(t, got, []byte(want)) {
				t.Errorf("shim(%s) %s = %s, want %s", c.file, name, got, want)
			}
		}
		// Only settings leave the module: a star import must not drag
		// helpers into the project's settings.
		for name := range r.Settings {
			if !settingName.MatchString(name) {
				t.Errorf("shim(%s) exports %q, want only UPPERCASE settings", c.file, name)
			}
		}
	}
}

func TestShimSecrets(t *testing.T) {
	python := lookPython(t)
	settings := filepath.Join(t.TempDir(), "settings.json")
	b, err := (&Settings{
		BaseURL: "https://poll.example.org", Database: Database{Engine: "sqlite", Path: "/db"},
		StaticRoot: "/s", MediaRoot: "/m",
	}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(settings, b, 0o644); err != nil {
		t.Fatal(err)
	}
	both := map[string]string{SecretKeyFile: "from-file", FieldEncryptionKeyFile: "fek"}
	onlySecret := writeSecrets(t, map[string]string{SecretKeyFile: "from-file"})
	tests := []struct {
		name    string
		env     []string
		wantErr []string // substrings of the error; nil means success
		wantKey string
	}{
		{"secrets dir", []string{SecretsDirEnv + "=" + writeSecrets(t, both)}, nil, "from-file"},
		{"credentials directory wins", []string{
			CredentialsEnv + "=" + writeSecrets(t, map[string]string{SecretKeyFile: "from-credentials", FieldEncryptionKeyFile: "fek"}),
			SecretsDirEnv + "=" + writeSecrets(t, both),
		}, nil, "from-credentials"},
		{"environment is ignored", []string{"SECRET_KEY=from-env", SecretsDirEnv + "=" + writeSecrets(t, both)}, nil, "from-file"},
		{"missing field key", []string{SecretsDirEnv + "=" + onlySecret},
			[]string{filepath.Join(onlySecret, FieldEncryptionKeyFile), "is missing", "$" + SecretsDirEnv, "generates missing secrets"}, ""},
		{"missing secret key under systemd", []string{CredentialsEnv + "=" + writeSecrets(t, map[string]string{FieldEncryptionKeyFile: "fek"})},
			[]string{SecretKeyFile + `"`, "is missing", "$" + CredentialsEnv}, ""},
		{"empty secret", []string{SecretsDirEnv + "=" + writeSecrets(t, map[string]string{SecretKeyFile: "\n", FieldEncryptionKeyFile: "fek"})},
			[]string{SecretKeyFile, "is empty"}, ""},
		{"no directory", nil, []string{"no secrets directory", SecretsDirEnv, CredentialsEnv}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(python, filepath.Join("testdata", "run_cases.py"), "settings_local.py", settings)
			cmd.Env = stubEnv(t, tt.env...)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("run_cases.py: %v\n%s", err, stderrOf(err))
			}
			var r struct {
				Error    *string
				Settings map[string]any
			}
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("decode %s: %v", out, err)
			}
			if tt.wantErr == nil {
				if r.Error != nil || r.Settings["SECRET_KEY"] != tt.wantKey {
					t.Fatalf("shim(%v) SECRET_KEY = %v (error %v), want %q", tt.env, r.Settings["SECRET_KEY"], deref(r.Error), tt.wantKey)
				}
				return
			}
			for _, want := range tt.wantErr {
				if r.Error == nil || !strings.Contains(*r.Error, want) {
					t.Fatalf("shim(%v) error = %v, want it to contain %q", tt.env, deref(r.Error), want)
				}
			}
		})
	}
}

func lookPython(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		testenv.Skip(t, "python3 not found on PATH; the shim tests need it")
	}
	return p
}

// stubEnv is a minimal environment with the stand-in Django on the path.
func stubEnv(t *testing.T, extra ...string) []string {
	t.Helper()
	stub, err := filepath.Abs(filepath.Join("testdata", "stub"))
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"PATH=" + os.Getenv("PATH"), "PYTHONPATH=" + stub, "PYTHONDONTWRITEBYTECODE=1"}, extra...)
}

func writeSecrets(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, val := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(val), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		return false
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("bad JSON in a want header: %s", b)
	}
	return reflect.DeepEqual(x, y)
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func stderrOf(err error) []byte {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.Stderr
	}
	return nil
}
