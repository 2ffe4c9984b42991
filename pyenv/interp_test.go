package pyenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
)

// fakeIdentity is what a CPython of version on arch would print.
func fakeIdentity(exe, version, arch string) identity {
	var maj, min, patch int
	fmt.Sscanf(version, "%d.%d.%d", &maj, &min, &patch)
	prefix := filepath.Dir(filepath.Dir(exe))
	py := fmt.Sprintf("python%d.%d", maj, min)
	return identity{
		Probe: 1, Implementation: "cpython", Version: version,
		VersionInfo: []int{maj, min, patch}, Machine: arch, PointerBits: 64,
		Executable: exe, BaseExecutable: exe, Prefix: prefix, BasePrefix: prefix,
		PlatLibDir: "lib",
		Paths: map[string]string{
			"purelib": filepath.Join(prefix, "lib", py, "site-packages"),
			"platlib": filepath.Join(prefix, "lib", py, "site-packages"),
			"scripts": filepath.Join(prefix, "bin"),
			"include": filepath.Join(prefix, "include", py),
			"stdlib":  filepath.Join(prefix, "lib", py),
			"data":    prefix,
		},
		Libc: "glibc", LibcVersion: "2.36",
	}
}

// writeScript writes an executable shell script that logs each run to
// path+".runs" and then runs body.
func writeScript(t *testing.T, path, body string) {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		testenv.Skip(t, "sh not found on PATH; fake interpreters are shell scripts")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("#!%s\necho run >> '%s.runs'\n%s\n", sh, path, body)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// writeFake writes a fake interpreter at path that prints id, with
// edit applied to the identity first.
func writeFake(t *testing.T, path, version, arch string, edit func(*identity)) string {
	t.Helper()
	id := fakeIdentity(path, version, arch)
	if edit != nil {
		edit(&id)
	}
	out, err := json.Marshal(id)
	if err != nil {
		t.Fatal(err)
	}
	writeScript(t, path, "cat <<'EOF'\n"+string(out)+"\nEOF")
	return path
}

func runs(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path + ".runs")
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "run\n")
}

// fakeHost lays out interpreters on PATH, in pyenv's and in uv's folders.
type fakeHost struct {
	env                                    map[string]string
	py312, py313t, py311musl, liar, broken string
	pyenv3131, pyenv31310, shim, uv314arm  string
}

func newFakeHost(t *testing.T) *fakeHost {
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	pyenv, uv := filepath.Join(root, "pyenv"), filepath.Join(root, "uv")
	h := &fakeHost{
		py312:      writeFake(t, filepath.Join(a, "python3.12"), "3.12.4", "x86_64", nil),
		py313t:     writeFake(t, filepath.Join(a, "python3.13t"), "3.13.1", "x86_64", func(id *identity) { id.FreeThreaded, id.ABIFlags = true, "t" }),
		py311musl:  writeFake(t, filepath.Join(b, "python3.11"), "3.11.9", "x86_64", func(id *identity) { id.Libc, id.LibcVersion = "", "" }),
		liar:       writeFake(t, filepath.Join(b, "python3.8"), "3.15.0", "x86_64", nil),
		pyenv3131:  writeFake(t, filepath.Join(pyenv, "versions", "3.13.1", "bin", "python3.13"), "3.13.1", "x86_64", nil),
		pyenv31310: writeFake(t, filepath.Join(pyenv, "versions", "3.13.10", "bin", "python3.13"), "3.13.10", "x86_64", nil),
		shim:       writeFake(t, filepath.Join(pyenv, "shims", "python3.13"), "3.13.99", "x86_64", nil),
		uv314arm:   writeFake(t, filepath.Join(uv, "cpython-3.14.0-linux-aarch64-gnu", "bin", "python3.14"), "3.14.0", "aarch64", nil),
	}
	h.broken = filepath.Join(b, "python3.9")
	writeScript(t, h.broken, "echo 'not json'")
	// Not interpreters: the names must not be picked up at all.
	writeScript(t, filepath.Join(a, "python3.12-config"), "exit 1")
	writeScript(t, filepath.Join(pyenv, "versions", "3.13.1", "bin", "python3.13-gdb.py"), "exit 1")
	// The same file twice on PATH is one candidate.
	if err := os.Symlink(h.py312, filepath.Join(b, "python3.12")); err != nil {
		t.Fatal(err)
	}
	h.env = map[string]string{
		"PATH":                  strings.Join([]string{filepath.Join(pyenv, "shims"), a, "", "relative", b}, string(os.PathListSeparator)),
		"PYENV_ROOT":            pyenv,
		"UV_PYTHON_INSTALL_DIR": uv,
		"HOME":                  filepath.Join(root, "home"),
	}
	return h
}

func (h *fakeHost) getenv(k string) string { return h.env[k] }

func TestFind(t *testing.T) {
	h := newFakeHost(t)
	tests := []struct {
		want []Want
		path string // empty: a *NotFoundError
	}{
		{[]Want{{"3.13", "x86_64"}}, h.pyenv31310},
		{[]Want{{"3.12", "x86_64"}}, h.py312},
		{[]Want{{"3.14", "x86_64"}, {"3.12", "x86_64"}}, h.py312},
		{[]Want{{"3.12", "x86_64"}, {"3.13", "x86_64"}}, h.py312},
		{[]Want{{"3.13", "x86_64"}, {"3.12", "x86_64"}}, h.pyenv31310},
		{[]Want{{"3.14", "aarch64"}}, h.uv314arm},
		{[]Want{{"3.14", ""}}, h.uv314arm},
		{[]Want{{"3.11", "x86_64"}}, ""},
		{[]Want{{"3.15", "x86_64"}}, h.liar},
		{[]Want{{"3.12", "aarch64"}}, ""},
	}
	for _, tt := range tests {
		it, err := Find(context.Background(), tt.want, FindOptions{Getenv: h.getenv})
		var got string
		if it != nil {
			got = it.Path
		}
		var nf *NotFoundError
		if tt.path == "" && !errors.As(err, &nf) || tt.path != "" && (err != nil || got != tt.path) {
			t.Errorf("Find(%v) = %q, %v, want %q", tt.want, got, err, tt.path)
		}
	}
	if n := runs(t, h.shim); n != 0 {
		t.Errorf("pyenv shim ran %d times, want 0: shims are skipped", n)
	}
}

func TestFindNotFound(t *testing.T) {
	h := newFakeHost(t)
	want := []Want{{"3.16", "x86_64"}, {"3.12", "aarch64"}}
	_, err := Find(context.Background(), want, FindOptions{Getenv: h.getenv})
	var nf *NotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("Find(%v) error = %v, want a *NotFoundError", want, err)
	}
	if len(nf.Found) != 8 {
		t.Errorf("Find(%v) found %d candidates, want 8: %+v", want, len(nf.Found), nf.Found)
	}
	msg := err.Error()
	for _, s := range []string{
		h.py312 + ": CPython 3.12.4 x86_64 glibc 2.36",
		h.py313t + ": CPython 3.13.1 x86_64 free-threaded",
		h.py311musl + ": CPython 3.11.9 x86_64 without glibc",
		h.liar + ": CPython 3.15.0",
		h.pyenv3131 + ": CPython 3.13.1",
		h.pyenv31310 + ": CPython 3.13.10",
		h.uv314arm + ": CPython 3.14.0 aarch64",
		h.broken + ": it does not run as a CPython 3 interpreter",
		"needs one of: CPython 3.16 x86_64, CPython 3.12 aarch64",
		"--python PATH",
		"uv python install 3.16",
	} {
		if !strings.Contains(msg, s) {
			t.Errorf("Find(%v) error lacks %q:\n%s", want, s, msg)
		}
	}
	if strings.Contains(msg, h.shim) {
		t.Errorf("Find(%v) error lists the pyenv shim %q:\n%s", want, h.shim, msg)
	}
}

func TestFindDefaultDirs(t *testing.T) {
	home := t.TempDir()
	pyenv := writeFake(t, filepath.Join(home, ".pyenv", "versions", "3.12.1", "bin", "python3.12"), "3.12.1", "x86_64", nil)
	uv := writeFake(t, filepath.Join(home, ".local", "share", "uv", "python", "cpython-3.13.2-linux-x86_64-gnu", "bin", "python3.13"), "3.13.2", "x86_64", nil)
	xdg := t.TempDir()
	uvXDG := writeFake(t, filepath.Join(xdg, "uv", "python", "cpython-3.13.3-linux-x86_64-gnu", "bin", "python3.13"), "3.13.3", "x86_64", nil)
	tests := []struct {
		env  map[string]string
		want Want
		path string
	}{
		{map[string]string{"HOME": home}, Want{"3.12", "x86_64"}, pyenv},
		{map[string]string{"HOME": home}, Want{"3.13", "x86_64"}, uv},
		{map[string]string{"HOME": home, "XDG_DATA_HOME": xdg}, Want{"3.13", "x86_64"}, uvXDG},
	}
	for _, tt := range tests {
		it, err := Find(context.Background(), []Want{tt.want}, FindOptions{Getenv: func(k string) string { return tt.env[k] }})
		if err != nil || it.Path != tt.path {
			t.Errorf("Find(%v) with %v = %v, %v, want %q", tt.want, tt.env, it, err, tt.path)
		}
	}
}

func TestFindExplicit(t *testing.T) {
	h := newFakeHost(t)
	ctx := context.Background()
	it, err := Find(ctx, []Want{{"3.13", "x86_64"}, {"3.12", "x86_64"}}, FindOptions{Explicit: h.py312, Getenv: h.getenv})
	if err != nil || it.Path != h.py312 {
		t.Errorf("Find(explicit %q) = %v, %v, want it", h.py312, it, err)
	}
	if n := runs(t, h.pyenv31310); n != 0 {
		t.Errorf("Find with --python ran %q %d times, want 0", h.pyenv31310, n)
	}

	_, err = Find(ctx, []Want{{"3.13", "x86_64"}}, FindOptions{Explicit: h.py312, Getenv: h.getenv})
	var nf *NotFoundError
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), fmt.Sprintf("--python %q does not fit", h.py312)) {
		t.Errorf("Find(explicit %q, 3.13) error = %v, want a *NotFoundError naming --python", h.py312, err)
	}

	missing := filepath.Join(t.TempDir(), "python3.13")
	_, err = Find(ctx, []Want{{"3.13", "x86_64"}}, FindOptions{Explicit: missing})
	if err == nil || errors.As(err, &nf) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Find(explicit %q) error = %v, want a probe error naming the path", missing, err)
	}
}

func TestFindBadWant(t *testing.T) {
	for _, want := range [][]Want{nil, {{"3", "x86_64"}}, {{"cp313", ""}}, {{"2.7", ""}}} {
		if _, err := Find(context.Background(), want, FindOptions{Getenv: func(string) string { return "" }}); err == nil {
			t.Errorf("Find(%v) = nil error, want one", want)
		}
	}
}

func TestProberCache(t *testing.T) {
	ctx := context.Background()
	path := writeFake(t, filepath.Join(t.TempDir(), "python3.12"), "3.12.4", "x86_64", nil)
	p := NewProber()
	for range 3 {
		if _, err := p.Probe(ctx, path); err != nil {
			t.Fatal(err)
		}
	}
	if n := runs(t, path); n != 1 {
		t.Errorf("3 probes of an unchanged file ran it %d times, want 1", n)
	}

	// A replaced binary (new size and mtime) is probed again.
	writeFake(t, path, "3.12.10", "x86_64", nil)
	it, err := p.Probe(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if n := runs(t, path); n != 2 || it.Version != "3.12.10" {
		t.Errorf("probe after replacing: ran %d times, version %q; want 2, %q", n, it.Version, "3.12.10")
	}

	// Returned values are copies: a caller's edit does not leak.
	it.Version = "changed"
	again, _ := p.Probe(ctx, path)
	if again.Version != "3.12.10" {
		t.Errorf("Probe after editing a result = %q, want %q", again.Version, "3.12.10")
	}

	// Find shares the cache.
	h := map[string]string{"PATH": filepath.Dir(path)}
	for range 2 {
		if _, err := Find(ctx, []Want{{"3.12", "x86_64"}}, FindOptions{Getenv: func(k string) string { return h[k] }, Prober: p}); err != nil {
			t.Fatal(err)
		}
	}
	if n := runs(t, path); n != 2 {
		t.Errorf("Find with a warm Prober ran the interpreter %d more times, want 0", n-2)
	}
}

func TestProbeErrors(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(notExec, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	writeScript(t, big, "head -c 70000 /dev/zero | tr '\\0' x")
	tests := []struct {
		name, body, want string
	}{
		{"garbage", "echo hello", "it does not run as a CPython 3 interpreter, which the lock's wheels need: give the path of a python3 (like /usr/bin/python3.13) (it printed 6 bytes that are not the probe's answer)"},
		{"nothing", "true", "does not run as a CPython 3 interpreter, which the lock's wheels need: give the path of a python3 (like /usr/bin/python3.13) (it printed nothing)"},
		{"empty-object", "echo '{}'", "does not run as a CPython 3 interpreter"},
		{"fails", "echo 'SyntaxError: boom' >&2; exit 1", "exit status 1: SyntaxError: boom"},
		{"python2-flags", "echo 'Unknown option: -I' >&2; exit 2", "does not run as a CPython 3 interpreter, which the lock's wheels need: give the path of a python3 (like /usr/bin/python3.13) (exit status 2: Unknown option: -I)"},
		{"python2", `echo '{"probe":1,"implementation":"cpython","version":"2.7.18","version_info":[2,7,18]}'`, `version "2.7.18" is not Python 3: give the path of a python3`},
	}
	p := NewProber()
	for _, tt := range tests {
		path := filepath.Join(dir, tt.name)
		writeScript(t, path, tt.body)
		_, err := p.Probe(context.Background(), path)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("Probe(%q) error = %v, want one naming the path and %q", tt.name, err, tt.want)
		}
	}
	for path, want := range map[string]string{notExec: "not an executable file", dir: "not an executable file", big: "larger than"} {
		if _, err := p.Probe(context.Background(), path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Probe(%q) error = %v, want one with %q", path, err, want)
		}
	}
}

func TestParseWant(t *testing.T) {
	tests := []struct {
		in   string
		want Want
		ok   bool
	}{
		{"cp313-x86_64", Want{"3.13", "x86_64"}, true},
		{"cp311-aarch64", Want{"3.11", "aarch64"}, true},
		{"cp39-x86_64", Want{"3.9", "x86_64"}, true},
		{"cp313", Want{}, false},
		{"py313-x86_64", Want{}, false},
		{"cp2-x86_64", Want{}, false},
		{"cp3013-x86_64", Want{}, false},
		{"cp313-x86_64-extra", Want{}, false},
	}
	for _, tt := range tests {
		got, err := ParseWant(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseWant(%q) = %v, %v, want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestNormArch(t *testing.T) {
	tests := []struct {
		machine string
		bits    int
		want    string
	}{
		{"x86_64", 64, "x86_64"},
		{"AMD64", 64, "x86_64"},
		{"aarch64", 64, "aarch64"},
		{"arm64", 64, "aarch64"},
		{"x86_64", 32, "i686"},
		{"aarch64", 32, "armv7l"},
		{"ppc64le", 64, "ppc64le"},
	}
	for _, tt := range tests {
		if got := normArch(tt.machine, tt.bits); got != tt.want {
			t.Errorf("normArch(%q, %d) = %q, want %q", tt.machine, tt.bits, got, tt.want)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"3.13.10", "3.13.9", 1},
		{"3.9.1", "3.13.0", -1},
		{"3.13.1", "3.13.1", 0},
		{"cpython-3.13.2-linux-x86_64-gnu", "cpython-3.13.10-linux-x86_64-gnu", -1},
		{"3.13", "3.13.0", -1},
		{"python3.13", "python3.13t", -1},
	}
	for _, tt := range tests {
		if got := compareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestID(t *testing.T) {
	base := Interpreter{Implementation: "cpython", Version: "3.13.1", Arch: "x86_64", RealPath: "/opt/py/bin/python3.13"}
	want := `cpython 3.13.1 x86_64 abiflags="" /opt/py/bin/python3.13`
	if got := base.ID(); got != want {
		t.Errorf("ID() = %q, want %q", got, want)
	}
	// Each field the store depends on changes the ID.
	for _, edit := range []func(*Interpreter){
		func(i *Interpreter) { i.Version = "3.13.2" },
		func(i *Interpreter) { i.Arch = "aarch64" },
		func(i *Interpreter) { i.ABIFlags = "t" },
		func(i *Interpreter) { i.RealPath = "/usr/bin/python3.13" },
		func(i *Interpreter) { i.Implementation = "pypy" },
	} {
		other := base
		edit(&other)
		if other.ID() == base.ID() {
			t.Errorf("ID() of %+v = ID() of %+v, want them to differ", other, base)
		}
	}
}

// hostArch is the wheel-tag arch this test binary runs on.
func hostArch() string {
	return normArch(map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH], 64)
}

func TestFindHost(t *testing.T) {
	ctx := context.Background()
	p := NewProber()
	found := 0
	for _, minor := range []string{"3.11", "3.12", "3.13", "3.14"} {
		it, err := Find(ctx, []Want{{minor, hostArch()}}, FindOptions{Prober: p})
		var nf *NotFoundError
		if errors.As(err, &nf) {
			continue
		}
		if err != nil {
			t.Errorf("Find(%s) = %v", minor, err)
			continue
		}
		found++
		out, err := exec.Command(it.Path, "-c", `import sys; print("%d.%d.%d" % sys.version_info[:3])`).Output()
		if err != nil {
			t.Errorf("run %q: %v", it.Path, err)
			continue
		}
		if got, want := strings.TrimSpace(string(out)), versionRE.FindString(it.Version); got != want || it.Minor != minor {
			t.Errorf("Find(%s) = %s (minor %s), but it runs as %s", minor, it.Version, it.Minor, got)
		}
		if it.Glibc == "" || it.Implementation != "cpython" || it.Paths.Purelib == "" {
			t.Errorf("Find(%s) = %+v, want CPython with glibc and sysconfig paths", minor, it)
		}
		t.Logf("%s: %s (%s)", minor, it.Path, it)
	}
	if found == 0 {
		testenv.Skip(t, "no CPython 3.11 to 3.14 on this host")
	}
}
