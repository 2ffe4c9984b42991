package shim

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
)

// fixtureDir is the small Django project the shim is tried on.
var fixtureDir = filepath.Join("..", "testdata", "fixtureapp")

// allowedDeployWarnings are the `check --deploy` warnings the fixture may
// give with the shim in place. None: the shim silences W008 and W021 itself,
// on purpose, and everything else must be fixed rather than allowed.
var allowedDeployWarnings = []string{}

// checkID matches a system check id in `manage.py check` output.
var checkID = regexp.MustCompile(`\(([a-z_]+\.[WE]\d+)\)`)

// TestFixtureApp installs the fixture project with the shim as its
// settings_local.py into a venv with Django from PyPI, then runs what an
// install runs: check --deploy, migrate, collectstatic, compilemessages,
// and creates a poll through the form, CSRF and all.
func TestFixtureApp(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped under -short: installs Django from PyPI into a venv")
	}
	python := fixtureVenv(t)
	p := newProject(t)

	out := p.manage(t, python, "check", "--deploy")
	var bad []string
	for _, m := range checkID.FindAllStringSubmatch(out, -1) {
		if !slices.Contains(allowedDeployWarnings, m[1]) {
			bad = append(bad, m[1])
		}
	}
	if len(bad) > 0 {
		t.Fatalf("check --deploy gave %q, want none of them:\n%s", bad, out)
	}
	if !strings.Contains(out, "no issues (2 silenced)") {
		t.Fatalf("check --deploy output = %q, want no issues with W008 and W021 silenced by the shim", out)
	}

	p.manage(t, python, "migrate", "--noinput")
	if _, err := os.Stat(p.db); err != nil {
		t.Fatalf("after migrate: %v, want the sqlite database at database.path", err)
	}
	p.manage(t, python, "collectstatic", "--noinput")
	css, err := os.ReadFile(filepath.Join(p.static, "polls", "style.css"))
	if err != nil || !bytes.Contains(css, []byte(".poll-title")) {
		t.Fatalf("after collectstatic: read polls/style.css under static_root: %v, want the fixture's css", err)
	}

	translated := false
	if _, err := exec.LookPath("msgfmt"); err != nil {
		t.Log("msgfmt not found (install gettext); skipping compilemessages")
	} else {
		p.manage(t, python, "compilemessages")
		mo := filepath.Join(p.app, "locale", "de", "LC_MESSAGES", "django.mo")
		if _, err := os.Stat(mo); err != nil {
			t.Fatalf("after compilemessages: %v, want %s", err, mo)
		}
		translated = true
	}

	// The Django test client with CSRF checks on: GET the form for the
	// token, POST it as a browser at base_url would, and read the poll back.
	// With DEBUG off only WhiteNoise can serve the hashed css file.
	script := `
import re
from django.test import Client
c = Client(enforce_csrf_checks=True, HTTP_HOST="poll.example.org", headers={"Accept-Language": "de"})
r = c.get("/", secure=True)
assert r.status_code == 200, r.status_code
print("FORM", r.content.decode())
token = r.cookies["csrftoken"].value
r = c.post("/", {"title": "Grillen am Freitag", "slug": "grillen", "csrfmiddlewaretoken": token},
           secure=True, headers={"Origin": "https://poll.example.org"})
print("POST", r.status_code, r.get("Location"))
r = c.get("/poll/grillen/", secure=True)
print("DETAIL", r.status_code, r.content.decode())
from django.templatetags.static import static
r = c.get(static("polls/style.css"), secure=True)
print("STATIC", r.status_code, r.get("Content-Type"))
r = c.post("/", {"title": "x", "slug": "nocsrf"}, secure=True, headers={"Origin": "https://poll.example.org"})
print("NOTOKEN", r.status_code)
`
	out = p.manage(t, python, "shell", "-c", script)
	for _, want := range []string{
		"POST 302 /poll/grillen/",
		"DETAIL 200",
		`<h1 class="poll-title">Grillen am Freitag</h1>`,
		"NOTOKEN 403",
		"STATIC 200 text/css", // served by WhiteNoise, which the shim added
	} {
		if !strings.Contains(out, want) {
			t.Errorf("form round trip output lacks %q:\n%s", want, out)
		}
	}
	if translated && !strings.Contains(out, "Neue Umfrage") {
		t.Errorf("form page in German lacks \"Neue Umfrage\" from the compiled catalogue:\n%s", out)
	}
}

// TestFixtureAppMissingSecret checks that Django itself stops with the
// shim's message when a secret file is missing.
func TestFixtureAppMissingSecret(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped under -short: installs Django from PyPI into a venv")
	}
	python := fixtureVenv(t)
	p := newProject(t)
	missing := filepath.Join(p.secrets, FieldEncryptionKeyFile)
	if err := os.Remove(missing); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "manage.py", "check")
	cmd.Dir, cmd.Env = p.app, p.env
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("manage.py check without %s succeeded, want a failure:\n%s", missing, out)
	}
	for _, want := range []string{"ImproperlyConfigured", `"` + missing + `"`, "is missing", "$" + SecretsDirEnv} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("manage.py check without %s: output lacks %q:\n%s", FieldEncryptionKeyFile, want, out)
		}
	}
}

// project is a copy of the fixture with the shim, a settings file and
// secrets, in a temporary directory.
type project struct {
	app, static, db, secrets string
	env                      []string
}

func newProject(t *testing.T) *project {
	t.Helper()
	root := t.TempDir()
	p := &project{
		app:     filepath.Join(root, "app"),
		static:  filepath.Join(root, "static"),
		db:      filepath.Join(root, "data", "db.sqlite3"),
		secrets: filepath.Join(root, "secrets"),
	}
	if err := os.CopyFS(p.app, os.DirFS(fixtureDir)); err != nil {
		t.Fatalf("copy fixture: %v", err)
	}
	if err := os.WriteFile(filepath.Join(p.app, "fixtureapp", "settings_local.py"), SettingsLocal, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Dir(p.db), p.secrets} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	s := Settings{
		BaseURL:    "https://poll.example.org",
		Database:   Database{Engine: "sqlite", Path: p.db},
		StaticRoot: p.static,
		MediaRoot:  filepath.Join(root, "data", "media"),
		TimeZone:   "Europe/Berlin",
	}
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	settings := filepath.Join(root, "settings.json")
	if err := os.WriteFile(settings, b, 0o644); err != nil {
		t.Fatal(err)
	}
	// Django wants a long random SECRET_KEY (security.W009) and the field
	// encryption a Fernet key: 32 bytes in URL-safe base64.
	for name, n := range map[string]int{SecretKeyFile: 48, FieldEncryptionKeyFile: 32} {
		key := base64.URLEncoding.EncodeToString(randomBytes(t, n))
		if err := os.WriteFile(filepath.Join(p.secrets, name), []byte(key+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + root,
		"PYTHONDONTWRITEBYTECODE=1",
		SettingsFileEnv + "=" + settings,
		SecretsDirEnv + "=" + p.secrets,
	}
	return p
}

func (p *project) manage(t *testing.T, python string, args ...string) string {
	t.Helper()
	cmd := exec.Command(python, append([]string{"manage.py"}, args...)...)
	cmd.Dir, cmd.Env = p.app, p.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("manage.py %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// fixtureVenv returns the python of a venv holding the fixture's
// requirements. The venv is cached under the user cache dir, keyed by the
// requirements and the interpreter, and marked complete only at the end,
// so an interrupted build is redone rather than reused.
func fixtureVenv(t *testing.T, extra ...string) string {
	t.Helper()
	python := lookPython(t)
	reqs, err := os.ReadFile(filepath.Join(fixtureDir, "requirements.txt"))
	if err != nil {
		t.Fatal(err)
	}
	version, err := exec.Command(python, "-c", "import sys; print(sys.version)").Output()
	if err != nil {
		testenv.Skipf(t, "python3 does not run (%v); the fixture test needs it", err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		testenv.Skipf(t, "no user cache dir (%v) to keep the test venv in", err)
	}
	h := sha256.New()
	h.Write(version)
	h.Write(reqs)
	for _, e := range extra {
		h.Write([]byte("\x00" + e))
	}
	venv := filepath.Join(cache, "bitpoll-install-test", "fixture-"+hex.EncodeToString(h.Sum(nil))[:16])
	vpython := filepath.Join(venv, "bin", "python")
	done := filepath.Join(venv, ".complete")
	if _, err := os.Stat(done); err == nil {
		return vpython
	}

	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("https://pypi.org/simple/django/")
	if err != nil {
		testenv.Skipf(t, "PyPI is not reachable (%v); the fixture test installs Django from it", err)
	}
	resp.Body.Close()

	if err := os.RemoveAll(venv); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{python, "-m", "venv", venv},
		append([]string{vpython, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q", "-r", filepath.Join(fixtureDir, "requirements.txt")}, extra...),
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return vpython
}

// TestMigrateLockKey: the Go constant is the key settings_local.py takes.
func TestMigrateLockKey(t *testing.T) {
	m := regexp.MustCompile(`MIGRATE_LOCK_KEY = int.from_bytes\(b"(\w+)", "big"\)`).FindSubmatch(SettingsLocal)
	if m == nil {
		t.Fatal(`settings_local.py has no MIGRATE_LOCK_KEY = int.from_bytes(b"...", "big")`)
	}
	var k int64
	for _, b := range m[1] {
		k = k<<8 | int64(b)
	}
	if k != MigrateLockKey {
		t.Errorf("settings_local.py's MIGRATE_LOCK_KEY is %d (%q), shim.MigrateLockKey %d", k, m[1], MigrateLockKey)
	}
}
