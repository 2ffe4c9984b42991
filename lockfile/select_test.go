package lockfile

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
	"github.com/bitpoll-install/bitpoll-install/pyspec/wheeltag"
)

// validLock parses testdata/parse/valid.txtar.
func validLock(t *testing.T) *Lock {
	t.Helper()
	a := readArchive(t, "testdata/parse/valid.txtar")
	l, err := Parse([]byte(a.files["bitpoll.lock"]), "bitpoll.lock")
	if err != nil {
		t.Fatalf("Parse(valid) = %v", err)
	}
	return l
}

func target(t *testing.T, s string) wheeltag.Target {
	t.Helper()
	tg, err := wheeltag.ParseTarget(s, wheeltag.Glibc{Major: 2, Minor: 28})
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func TestForTarget(t *testing.T) {
	l := validLock(t)
	tests := []struct {
		target string
		want   []string // file names, in lock order
	}{
		{"cp312-x86_64", []string{
			"django-6.0.5-py3-none-any.whl",
			"psycopg_binary-3.2.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
			"simple_pkg-1.0.tar.gz",
		}},
		{"cp313-aarch64", []string{
			"django-6.0.5-py3-none-any.whl",
			"psycopg_binary-3.2.3-cp313-cp313-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
			"simple_pkg-1.0.tar.gz",
		}},
	}
	for _, tt := range tests {
		sel, err := l.ForTarget(target(t, tt.target))
		if err != nil {
			t.Fatalf("ForTarget(%q) = %v", tt.target, err)
		}
		var got []string
		for _, s := range sel {
			got = append(got, s.File.Name)
			if s.IsSdist != strings.HasSuffix(s.File.Name, ".tar.gz") {
				t.Errorf("ForTarget(%q): %s IsSdist = %v", tt.target, s.File.Name, s.IsSdist)
			}
		}
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("ForTarget(%q) = %q, want %q", tt.target, got, tt.want)
		}
	}

	// A target the lock lacks wheels for is an error naming the package.
	_, err := l.ForTarget(target(t, "cp313-x86_64"))
	if err == nil || !strings.Contains(err.Error(), "psycopg-binary 3.2.3") || !strings.Contains(err.Error(), "cp313-x86_64") {
		t.Errorf("ForTarget(cp313-x86_64) = %v, want an error naming psycopg-binary 3.2.3 and the target", err)
	}

	// A marker that does not hold leaves the package out.
	l.Packages[1].Marker = `platform_machine == "aarch64"`
	sel, err := l.ForTarget(target(t, "cp312-x86_64"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sel {
		if s.Package.Name == "psycopg-binary" {
			t.Errorf("ForTarget(cp312-x86_64) selected psycopg-binary despite marker %q", l.Packages[1].Marker)
		}
	}
}

func TestPickPrefersBetterWheel(t *testing.T) {
	p := Package{Name: "x", Version: "1", Wheels: []File{
		{Name: "x-1-py3-none-any.whl"},
		{Name: "x-1-cp313-cp313-manylinux_2_28_x86_64.whl"},
		{Name: "x-1-cp313-cp313-manylinux_2_17_x86_64.whl"},
		{Name: "x-1-cp313-cp313-manylinux_2_34_x86_64.whl"},
	}, Sdist: &File{Name: "x-1.tar.gz"}}
	tests := []struct {
		target string
		want   string
	}{
		{"cp313-x86_64", "x-1-cp313-cp313-manylinux_2_28_x86_64.whl"},
		{"cp312-x86_64", "x-1-py3-none-any.whl"},
		{"cp313-aarch64", "x-1-py3-none-any.whl"},
	}
	for _, tt := range tests {
		s, ok := p.Pick(target(t, tt.target))
		if !ok || s.File.Name != tt.want || s.IsSdist {
			t.Errorf("Pick(%q) = %q, %v, want %q", tt.target, s.File.Name, ok, tt.want)
		}
	}
	p.Wheels = p.Wheels[1:]
	// With wheels for other targets, the sdist serves only the targets
	// marked for it: no silent fallback.
	if s, ok := p.Pick(target(t, "cp312-x86_64")); ok {
		t.Errorf("Pick(cp312-x86_64) without a py3 wheel and no sdist-targets = %q, want none", s.File.Name)
	}
	p.SdistTargets = []string{"cp312-x86_64"}
	if s, ok := p.Pick(target(t, "cp312-x86_64")); !ok || !s.IsSdist {
		t.Errorf("Pick(cp312-x86_64) marked in sdist-targets = %q, %v, want the sdist", s.File.Name, ok)
	}
	if s, ok := p.Pick(target(t, "cp313-x86_64")); !ok || s.IsSdist {
		t.Errorf("Pick(cp313-x86_64) with a wheel and the sdist marked elsewhere = %q, %v, want the wheel", s.File.Name, ok)
	}
	if s, ok := p.Pick(target(t, "cp313-aarch64")); ok {
		t.Errorf("Pick(cp313-aarch64), neither a wheel nor marked = %q, want none", s.File.Name)
	}
	// A package without wheels builds its sdist everywhere.
	if s, ok := (&Package{Sdist: p.Sdist}).Pick(target(t, "cp313-aarch64")); !ok || !s.IsSdist {
		t.Errorf("Pick(cp313-aarch64) of an sdist-only package = %q, %v, want the sdist", s.File.Name, ok)
	}
	p.Sdist = nil
	if s, ok := p.Pick(target(t, "cp312-x86_64")); ok {
		t.Errorf("Pick(cp312-x86_64) with nothing compatible = %q, want none", s.File.Name)
	}
}

func TestParsedTargets(t *testing.T) {
	l := validLock(t)
	ts, err := l.ParsedTargets()
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0].String() != "cp312-x86_64" || ts[1].Glibc != (wheeltag.Glibc{Major: 2, Minor: 28}) {
		t.Errorf("ParsedTargets() = %v, want cp312-x86_64 and cp313-aarch64 at glibc 2.28", ts)
	}
	l.Glibc = "2"
	if _, err := l.ParsedTargets(); err == nil {
		t.Error("ParsedTargets() with glibc \"2\" = nil error, want one")
	}
}

func TestCheckInMemory(t *testing.T) {
	l := validLock(t)
	if err := l.Check(); err != nil {
		t.Fatalf("Check() = %v", err)
	}
	l.Packages[0].Wheels[0].SHA256 = "abc"
	l.App.Tree = ""
	err := l.Check()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Check() = %v, want an *Error inside", err)
	}
	want := "packages[0].wheels[0].hashes.sha256: \"abc\" is not a sha256 digest (want 64 lowercase hex digits)\n" +
		"app.tree: missing required field (want the git tree id of the source, 40 lowercase hex digits)"
	if !sameLines(err.Error(), want) {
		t.Errorf("Check() = %q, want %q", err, want)
	}
	if _, err := Format(l); err == nil {
		t.Error("Format() of an invalid lock = nil error, want the Check error")
	}
}

func sameLines(a, b string) bool {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	if len(la) != len(lb) {
		return false
	}
	seen := map[string]int{}
	for _, s := range la {
		seen[s]++
	}
	for _, s := range lb {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestFormatSortsAndIsStable(t *testing.T) {
	l := validLock(t)
	want, err := Format(l)
	if err != nil {
		t.Fatal(err)
	}
	// Reverse packages, wheels and targets: the bytes must not change.
	ps := l.Packages
	for i, j := 0, len(ps)-1; i < j; i, j = i+1, j-1 {
		ps[i], ps[j] = ps[j], ps[i]
	}
	for i := range ps {
		w := ps[i].Wheels
		for a, b := 0, len(w)-1; a < b; a, b = a+1, b-1 {
			w[a], w[b] = w[b], w[a]
		}
	}
	l.Targets[0], l.Targets[1] = l.Targets[1], l.Targets[0]
	l.Packages[0].Sdist.UploadTime = "2020-01-01T01:00:00+01:00"
	got, err := Format(l)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Format() after reordering =\n%s\nwant\n%s", got, want)
	}
}

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{`plain`, `"plain"`},
		{`python_version >= "3.12"`, `"python_version >= \"3.12\""`},
		{`a\b`, `"a\\b"`},
		{"tab\there\n", `"tab\there\n"`},
		{"bell\x07del\x7f", `"bell\u0007del\u007F"`},
		{"naïve", `"naïve"`},
	}
	for _, tt := range tests {
		if got := quote(tt.in); got != tt.want {
			t.Errorf("quote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestDidYouMean(t *testing.T) {
	tests := []struct{ key, want string }{
		{"requires_python", ` (did you mean "requires-python"?)`},
		{"Targets", ` (did you mean "targets"?)`},
		{"colour", ""},
	}
	for _, tt := range tests {
		if got := didYouMean(tt.key, topKeys); got != tt.want {
			t.Errorf("didYouMean(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

func TestWriteFile(t *testing.T) {
	l := validLock(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "bitpoll.lock")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, l); err != nil {
		t.Fatalf("WriteFile() = %v", err)
	}
	want, _ := Format(l)
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("WriteFile() wrote %q, %v, want the formatted lock", got, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("WriteFile() left %d files in the directory, want 1 (no temporary file)", len(entries))
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("WriteFile() mode = %v, %v, want 0644", fi.Mode(), err)
	}
	back, err := ReadFile(path)
	if err != nil || back.App.Tree != l.App.Tree {
		t.Errorf("ReadFile() = %v, %v, want the lock back", back, err)
	}

	// An invalid lock leaves the old file alone.
	l.App.Tree = "bad"
	if err := WriteFile(path, l); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("WriteFile(invalid) = %v, want an error naming %s", err, path)
	}
	if got2, _ := os.ReadFile(path); !bytes.Equal(got2, want) {
		t.Error("WriteFile(invalid) changed the file")
	}
	if _, err := ReadFile(filepath.Join(dir, "missing.lock")); err == nil {
		t.Error("ReadFile(missing) = nil error")
	}
}

// pythonWith returns python3 if it can import every module, else skips.
func pythonWith(t *testing.T, modules ...string) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		testenv.Skip(t, "python3 not found; it is needed to cross-check the TOML")
	}
	for _, m := range modules {
		if err := exec.Command(py, "-c", "import "+m).Run(); err != nil {
			testenv.Skipf(t, "python3 cannot import %s (Python 3.11+ has tomllib; pip install packaging)", m)
		}
	}
	return py
}

// TestFormatLoadsInPython checks that tomllib reads the formatted lock to
// the same values.
func TestFormatLoadsInPython(t *testing.T) {
	py := pythonWith(t, "tomllib")
	l := validLock(t)
	l.CreatedBy = "bitpoll-install \"quoted\" \\ naïve\t1"
	data, err := Format(l)
	if err != nil {
		t.Fatal(err)
	}
	const script = `
import sys, tomllib
d = tomllib.loads(sys.stdin.read())
assert d["lock-version"] == 1, d["lock-version"]
print(d["created-by"])
print(d["app"]["tree"])
print(len(d["packages"]), sum(len(p.get("wheels", [])) for p in d["packages"]))
print(d["packages"][0]["wheels"][0]["upload-time"])
print(d["packages"][3]["sdist"]["hashes"]["sha256"])
`
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3 tomllib on the formatted lock: %v\n%s", err, out)
	}
	want := l.CreatedBy + "\n" + l.App.Tree + "\n4 4\n2026-05-06T12:00:00.123456Z\n" + strings.Repeat("0", 63) + "5\n"
	if string(out) != want {
		t.Errorf("tomllib read\n%s\nwant\n%s", out, want)
	}
}

// TestExportPylock checks the export with packaging.pylock, the reference
// reader of PEP 751, and lets it select the files for the target.
func TestExportPylock(t *testing.T) {
	py := pythonWith(t, "tomllib", "packaging.pylock")
	l := validLock(t)
	const script = `
import sys, tomllib
from packaging.pylock import Pylock
from packaging import tags
from packaging.markers import default_environment
minor, arch = int(sys.argv[1]), sys.argv[2]
d = tomllib.loads(sys.stdin.read())
assert d["lock-version"] == "1.0" and d["created-by"] and d["requires-python"] and d["environments"], d
lock = Pylock.from_dict(d)
env = default_environment()
env.update(python_version="3.%d" % minor, python_full_version="3.%d.0" % minor, platform_machine=arch,
           sys_platform="linux", implementation_name="cpython", platform_system="Linux", os_name="posix")
plats = ["manylinux_2_%d_%s" % (m, arch) for m in range(28, 16, -1)] + ["manylinux2014_" + arch]
ts = list(tags.cpython_tags((3, minor), abis=["cp3%d" % minor], platforms=plats)) + list(tags.compatible_tags((3, minor), "cp3%d" % minor, plats))
for pkg, f in lock.select(environment=env, tags=ts):
    print(pkg.name, f.name, f.upload_time.isoformat() if f.upload_time else "-")
other = dict(env, platform_machine="riscv64")
try:
    list(lock.select(environment=other, tags=ts))
    print("selected elsewhere")
except Exception:
    pass
`
	tests := []struct {
		target string
		want   string
	}{
		{"cp312-x86_64", "django django-6.0.5-py3-none-any.whl 2026-05-06T12:00:00.123456+00:00\n" +
			"psycopg-binary psycopg_binary-3.2.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl 2024-10-01T10:00:00+00:00\n" +
			"simple-pkg simple_pkg-1.0.tar.gz 2020-01-01T00:00:00+00:00\n"},
		{"cp313-aarch64", "django django-6.0.5-py3-none-any.whl 2026-05-06T12:00:00.123456+00:00\n" +
			"psycopg-binary psycopg_binary-3.2.3-cp313-cp313-manylinux_2_17_aarch64.manylinux2014_aarch64.whl 2024-10-01T10:00:00+00:00\n" +
			"simple-pkg simple_pkg-1.0.tar.gz 2020-01-01T00:00:00+00:00\n"},
	}
	for _, tt := range tests {
		tg := target(t, tt.target)
		data, err := ExportPylock(l, tg)
		if err != nil {
			t.Fatalf("ExportPylock(%s) = %v", tt.target, err)
		}
		if bytes.Contains(data, []byte("setuptools")) {
			t.Errorf("ExportPylock(%s) holds the build-only setuptools:\n%s", tt.target, data)
		}
		cmd := exec.Command(py, "-c", script, tt.target[3:strings.Index(tt.target, "-")], tg.Arch)
		cmd.Stdin = bytes.NewReader(data)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("packaging.pylock on ExportPylock(%s): %v\n%s\n%s", tt.target, err, out, data)
		}
		if string(out) != tt.want {
			t.Errorf("packaging.pylock selected from ExportPylock(%s):\n%s\nwant\n%s", tt.target, out, tt.want)
		}
	}
	if _, err := ExportPylock(l, target(t, "cp311-x86_64")); err == nil {
		t.Error("ExportPylock(cp311-x86_64), not a target of the lock, = nil error")
	}
}

func FuzzParse(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*/*.txtar")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		_, lock, _ := strings.Cut(string(data), "-- bitpoll.lock --\n")
		lock, _, _ = strings.Cut(lock, "-- want.lock --\n")
		f.Add([]byte(lock))
	}
	f.Add([]byte("lock-version = 1\n[[packages]]\n[[packages.wheels]]\n[packages.x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Parse(data, "fuzz.lock")
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("Parse() error %v is not a non-empty ErrorList", err)
			}
			return
		}
		once, err := Format(l)
		if err != nil {
			t.Fatalf("Format(Parse()) = %v", err)
		}
		l2, err := Parse(once, "once.lock")
		if err != nil {
			t.Fatalf("Parse(Format()) = %v\n%s", err, once)
		}
		twice, err := Format(l2)
		if err != nil || !bytes.Equal(once, twice) {
			t.Fatalf("Format(Parse(Format())) changed:\n%s\nthen\n%s (%v)", once, twice, err)
		}
	})
}

// TestFormatLoadsInNix checks that builtins.fromTOML, which the flake uses
// and which rejects TOML date-times, reads the formatted lock.
func TestFormatLoadsInNix(t *testing.T) {
	nix, err := exec.LookPath("nix-instantiate")
	if err != nil {
		testenv.Skip(t, "nix-instantiate not found; install Nix to check that the flake can read the lock")
	}
	l := validLock(t)
	data, err := Format(l)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bitpoll.lock")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	expr := `let l = builtins.fromTOML (builtins.readFile ` + path + `); in ` +
		`"${l.app.tree} ${toString (builtins.length l.packages)} ${(builtins.head (builtins.head l.packages).wheels).upload-time}"`
	out, err := exec.Command(nix, "--eval", "--expr", expr).CombinedOutput()
	if err != nil {
		t.Fatalf("nix-instantiate --eval on the formatted lock: %v\n%s", err, out)
	}
	want := `"` + l.App.Tree + ` 4 2026-05-06T12:00:00.123456Z"` + "\n"
	if string(out) != want {
		t.Errorf("builtins.fromTOML read %s, want %s", out, want)
	}
}
