package nix

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/pyspec/pep508"
	"github.com/bitpoll-install/bitpoll-install/pyspec/wheeltag"
)

// nixFile is what lock.nix's select returns for one locked file.
type nixFile struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	File    string `json:"file"`
	URL     string `json:"url"`
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
	Sdist   bool   `json:"sdist"`
}

type nixSelection struct {
	Target string `json:"target"`
	App    struct {
		Name    string  `json:"name"`
		Version string  `json:"version"`
		URL     string  `json:"url"`
		Commit  string  `json:"commit"`
		Tree    string  `json:"tree"`
		NarHash *string `json:"narHash"`
	} `json:"app"`
	Packages      []nixFile `json:"packages"`
	BuildPackages []nixFile `json:"buildPackages"`
}

// goSelection is lockfile's answer for t in the shape lock.nix gives: the
// installed files, and the build-only files when an sdist is among them
// (as install's build closure).
func goSelection(t *testing.T, l *lockfile.Lock, tg wheeltag.Target) (pkgs, build []nixFile) {
	t.Helper()
	sel, err := l.ForTarget(tg)
	if err != nil {
		t.Fatalf("ForTarget(%s) = %v", tg, err)
	}
	conv := func(s lockfile.Selected) nixFile {
		return nixFile{s.Package.Name, s.Package.Version, s.File.Name, s.File.URL, s.File.SHA256, s.File.Size, s.IsSdist}
	}
	anySdist := false
	for _, s := range sel {
		pkgs = append(pkgs, conv(s))
		anySdist = anySdist || s.IsSdist
	}
	if anySdist {
		for i := range l.Packages {
			if p := &l.Packages[i]; p.BuildOnly {
				if s, ok := p.Pick(tg); ok {
					build = append(build, conv(s))
				}
			}
		}
	}
	return pkgs, build
}

// nixSelect runs lock.nix's select on the lock file for every target at
// once, returning the selections by target.
func nixSelect(t *testing.T, lockPath string, targets []wheeltag.Target) map[string]nixSelection {
	t.Helper()
	var calls []string
	for _, tg := range targets {
		calls = append(calls, fmt.Sprintf("(l.select { inherit lock; python = %s; arch = %s; })", nixStr(tg.PythonVersion()), nixStr(tg.Arch)))
	}
	expr := fmt.Sprintf("let l = import %s; lock = builtins.fromTOML (builtins.readFile %s); in [ %s ]",
		nixStr(filepath.Join(repoRoot(t), "nix/lock.nix")), nixStr(lockPath), strings.Join(calls, " "))
	out, err := evalJSON(t, expr)
	if err != nil {
		t.Fatalf("lock.nix select on %s: %v", lockPath, err)
	}
	var got []nixSelection
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	m := map[string]nixSelection{}
	for i, tg := range targets {
		m[tg.String()] = got[i]
	}
	return m
}

// compareLock checks lock.nix against lockfile for every target of the lock.
func compareLock(t *testing.T, lockPath string) {
	t.Helper()
	l, err := lockfile.ReadFile(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	targets, err := l.ParsedTargets()
	if err != nil {
		t.Fatal(err)
	}
	got := nixSelect(t, lockPath, targets)
	for _, tg := range targets {
		n := got[tg.String()]
		wantPkgs, wantBuild := goSelection(t, l, tg)
		if n.Target != tg.String() {
			t.Errorf("%s: lock.nix target = %q, want %q", lockPath, n.Target, tg)
		}
		if !reflect.DeepEqual(n.Packages, wantPkgs) {
			t.Errorf("%s: lock.nix select(%s) packages =\n%v\nwant (lockfile.ForTarget)\n%v", lockPath, tg, names(n.Packages), names(wantPkgs))
		}
		if (len(n.BuildPackages) != 0 || len(wantBuild) != 0) && !reflect.DeepEqual(n.BuildPackages, wantBuild) {
			t.Errorf("%s: lock.nix select(%s) buildPackages = %v, want %v", lockPath, tg, names(n.BuildPackages), names(wantBuild))
		}
		if n.App.Commit != l.App.Commit || n.App.Tree != l.App.Tree || n.App.URL != l.App.URL || n.App.Version != l.App.Version {
			t.Errorf("%s: lock.nix app = %+v, want %+v", lockPath, n.App, l.App)
		}
		if (n.App.NarHash == nil) != (l.App.NarHash == "") || n.App.NarHash != nil && *n.App.NarHash != l.App.NarHash {
			t.Errorf("%s: lock.nix app.narHash = %v, want %q (null when absent)", lockPath, n.App.NarHash, l.App.NarHash)
		}
	}
}

func names(fs []nixFile) []string {
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%s %s %s %s", f.Name, f.Version, f.File, f.SHA256[:8]))
	}
	return out
}

// TestSelectCommittedLock compares lock.nix with lockfile.ForTarget on
// the committed bitpoll.lock, for each of its targets.
func TestSelectCommittedLock(t *testing.T) {
	compareLock(t, filepath.Join(repoRoot(t), "bitpoll.lock"))
}

// TestSelectTestdataLocks compares them on each lock in testdata/locks:
// markers, sdists with build-only packages, aarch64 targets, tag priority.
func TestSelectTestdataLocks(t *testing.T) {
	files, _ := filepath.Glob("testdata/locks/*.lock")
	if len(files) == 0 {
		t.Fatal("no testdata/locks/*.lock")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			abs, _ := filepath.Abs(f)
			compareLock(t, abs)
		})
	}
}

// TestSelectGeneratedLocks compares them on random locks that lockfile
// accepts: random wheel tags, markers, sdists and build-only packages.
func TestSelectGeneratedLocks(t *testing.T) {
	marked := 0
	defer func() {
		if marked == 0 {
			t.Error("no generated lock has a package with sdist-targets: the per-target sdist is not exercised")
		}
	}()
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			l := generateLock(rand.New(rand.NewPCG(seed, 7)))
			for _, p := range l.Packages {
				if len(p.SdistTargets) > 0 {
					marked++
				}
			}
			data, err := lockfile.Format(l)
			if err != nil {
				t.Fatalf("generated lock does not pass Check: %v", err)
			}
			p := filepath.Join(t.TempDir(), "bitpoll.lock")
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			compareLock(t, p)
		})
	}
}

// TestSelectErrors checks that lock.nix fails, with a message naming the
// problem, where lockfile does.
func TestSelectErrors(t *testing.T) {
	lock := filepath.Join(repoRoot(t), "bitpoll.lock")
	tests := []struct {
		python, arch string
		want         string
	}{
		{"3.11", "x86_64", "bitpoll.lock has no target cp311-x86_64"},
		{"3.15", "aarch64", "bitpoll.lock has no target cp315-aarch64"},
		{"3", "x86_64", `invalid python version "3"`},
	}
	for _, tt := range tests {
		expr := fmt.Sprintf("(import %s).select { lock = builtins.fromTOML (builtins.readFile %s); python = %s; arch = %s; }",
			nixStr(filepath.Join(repoRoot(t), "nix/lock.nix")), nixStr(lock), nixStr(tt.python), nixStr(tt.arch))
		_, err := evalJSON(t, expr)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("select(%q, %q) error = %v, want one containing %q", tt.python, tt.arch, err, tt.want)
		}
	}

	// A package without a file for the target: lockfile names it, and so
	// does lock.nix (Check would refuse such a lock, so it is built by hand).
	p := filepath.Join(t.TempDir(), "bitpoll.lock")
	data, err := os.ReadFile("testdata/locks/sdist_aarch64.lock")
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.Replace(string(data), `targets = ["cp313-aarch64"]`, `targets = ["cp313-aarch64", "cp312-aarch64"]`, 1))
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	expr := fmt.Sprintf("(import %s).select { lock = builtins.fromTOML (builtins.readFile %s); python = \"3.12\"; arch = \"aarch64\"; }",
		nixStr(filepath.Join(repoRoot(t), "nix/lock.nix")), nixStr(p))
	_, err = evalJSON(t, expr)
	if want := "no wheel and no sdist for cffi 2.0.0"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("select(cp312-aarch64) error = %v, want one containing %q", err, want)
	}

	// A package with wheels whose sdist is not marked for a target never
	// falls back to it there.
	data, err = os.ReadFile("testdata/locks/sdist_targets.lock")
	if err != nil {
		t.Fatal(err)
	}
	cut := strings.Replace(string(data), "sdist-targets = [\"cp313-aarch64\"]\n", "", 1)
	if cut == string(data) {
		t.Fatal("testdata/locks/sdist_targets.lock has no sdist-targets line")
	}
	if err := os.WriteFile(p, []byte(cut), 0o644); err != nil {
		t.Fatal(err)
	}
	expr = fmt.Sprintf("(import %s).select { lock = builtins.fromTOML (builtins.readFile %s); python = \"3.13\"; arch = \"aarch64\"; }",
		nixStr(filepath.Join(repoRoot(t), "nix/lock.nix")), nixStr(p))
	_, err = evalJSON(t, expr)
	if want := "no wheel and no sdist for libsass 0.23.0"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("select(cp313-aarch64) with libsass's sdist unmarked: error = %v, want one containing %q", err, want)
	}
}

// evalLockNix evaluates exprs, in which l is lock.nix, as one list in one
// Nix call and decodes the result into v.
func evalLockNix(t *testing.T, exprs []string, v any) {
	t.Helper()
	out, err := evalJSON(t, fmt.Sprintf("let l = import %s; in [ %s ]", nixStr(filepath.Join(repoRoot(t), "nix/lock.nix")), strings.Join(exprs, " ")))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatal(err)
	}
}

// TestTags compares lock.nix's tag priority with wheeltag.Target.Tags.
func TestTags(t *testing.T) {
	tests := []wheeltag.Target{
		{Minor: 13, Arch: "x86_64", Glibc: wheeltag.Glibc{Major: 2, Minor: 28}},
		{Minor: 8, Arch: "aarch64", Glibc: wheeltag.Glibc{Major: 2, Minor: 17}},
		{Minor: 12, Arch: "aarch64", Glibc: wheeltag.Glibc{Major: 2, Minor: 12}},
		{Minor: 14, Arch: "x86_64", Glibc: wheeltag.Glibc{Major: 2, Minor: 5}},
	}
	var exprs []string
	for _, tg := range tests {
		exprs = append(exprs, fmt.Sprintf("(l.tags %d %d %s)", tg.Minor, tg.Glibc.Minor, nixStr(tg.Arch)))
	}
	var got [][]string
	evalLockNix(t, exprs, &got)
	for i, tg := range tests {
		var want []string
		for _, tag := range tg.Tags() {
			want = append(want, tag.String())
		}
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("tags(%v) = %v, want %v", tg, got[i], want)
		}
	}
}

// TestWheelTags compares lock.nix's wheel name parsing with
// wheeltag.ParseFilename, invalid names included (null in Nix).
func TestWheelTags(t *testing.T) {
	tests := []string{
		"django-6.0.5-py3-none-any.whl",
		"Django_Crispy.Forms-2.1-py2.py3-none-any.whl",
		"psycopg_binary-3.2.3-1local-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
		"cffi-1.17.1-CP313-CP313-Manylinux_2_17_X86_64.whl",
		"x-1.0+local.1-py3-none-any.whl",
		"django-6.0.5.tar.gz",
		"django-6.0.5-py3-any.whl",
		"django-6.0.5-1-2-py3-none-any.whl",
		"dj__ango-6.0.5-py3-none-any.whl",
		"_django-6.0.5-py3-none-any.whl",
		"django-6 0-py3-none-any.whl",
		"django--py3-none-any.whl",
		"django-6.0-x1-py3-none-any.whl",
		"django-6.0-py3..py2-none-any.whl",
		"django-6.0-py3-none-.whl",
	}
	var exprs []string
	for _, fn := range tests {
		exprs = append(exprs, "(l.wheelTags "+nixStr(fn)+")")
	}
	var got [][]string
	evalLockNix(t, exprs, &got)
	for i, fn := range tests {
		var want []string
		if f, err := wheeltag.ParseFilename(fn); err == nil {
			want = []string{}
			for _, tag := range f.Tags {
				want = append(want, tag.String())
			}
		}
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("wheelTags(%q) = %v, want %v", fn, got[i], want)
		}
	}
}

// markerTargets are the environments the marker tests evaluate in.
var markerTargets = []struct {
	minor int
	arch  string
}{{8, "x86_64"}, {11, "aarch64"}, {12, "x86_64"}, {13, "aarch64"}, {14, "x86_64"}}

// compareMarkers evaluates each marker in each target with pep508 and with
// lock.nix's evalMarker, in one Nix call.
func compareMarkers(t *testing.T, markers []string) {
	t.Helper()
	var exprs []string
	for _, m := range markers {
		for _, tg := range markerTargets {
			exprs = append(exprs, fmt.Sprintf("(l.evalMarker (l.markerEnv \"3.%d\" %s) %s)", tg.minor, nixStr(tg.arch), nixStr(m)))
		}
	}
	var got []bool
	evalLockNix(t, exprs, &got)
	i := 0
	for _, m := range markers {
		parsed, err := pep508.ParseMarker(m)
		if err != nil {
			t.Fatalf("ParseMarker(%q) = %v", m, err)
		}
		for _, tg := range markerTargets {
			want := parsed.Evaluate(pep508.LinuxCPython(tg.minor, tg.arch), nil)
			if got[i] != want {
				t.Errorf("evalMarker(cp3%d-%s, %q) = %v, want %v", tg.minor, tg.arch, m, got[i], want)
			}
			i++
		}
	}
}

// TestEvalMarker compares the markers of testdata/markers.txt, one a line.
func TestEvalMarker(t *testing.T) {
	f, err := os.Open("testdata/markers.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var markers []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
			markers = append(markers, line)
		}
	}
	if len(markers) < 20 {
		t.Fatalf("testdata/markers.txt has %d markers, want the full corpus", len(markers))
	}
	compareMarkers(t, markers)
}

// TestEvalMarkerGenerated compares random markers built from the variables
// and operators that locks use.
func TestEvalMarkerGenerated(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var markers []string
	for range 300 {
		markers = append(markers, randomMarker(r, 0))
	}
	compareMarkers(t, markers)
}

// TestEvalMarkerInvalid checks that markers pep508 refuses make lock.nix
// fail too, rather than select silently.
func TestEvalMarkerInvalid(t *testing.T) {
	tests := []string{
		`python_version`,
		`python_version <`,
		`"3.8" < "3.9"`,
		`python_version < python_full_version`,
		`os_name == "posix" and`,
		`(os_name == "posix"`,
		`os_name == "posix")`,
		`foo == "bar"`,
		`extras == "a"`,
		`python_version ~ "3"`,
		`os_name notin "posix"`,
	}
	for _, m := range tests {
		if _, err := pep508.ParseMarker(m); err == nil {
			t.Fatalf("ParseMarker(%q) succeeded; the case is wrong", m)
		}
		_, err := evalJSON(t, fmt.Sprintf("(import %s).evalMarker ((import %[1]s).markerEnv \"3.13\" \"x86_64\") %s",
			nixStr(filepath.Join(repoRoot(t), "nix/lock.nix")), nixStr(m)))
		if err == nil || !strings.Contains(err.Error(), "invalid marker") {
			t.Errorf("evalMarker(%q) error = %v, want an invalid marker error", m, err)
		}
	}
}

var (
	markerVars = []string{"python_version", "python_full_version", "platform_machine", "os_name", "sys_platform",
		"platform_system", "implementation_name", "platform_python_implementation", "extra", "platform_release",
		"os.name", "platform.machine", "python_implementation", "implementation_version"}
	markerValues = []string{"3.8", "3.11", "3.12", "3.13", "3.14", "3.13.0", "3.12.1", "3", "3.1", "3.*", "3.12.*", "3.1.*",
		"x86_64", "aarch64", "posix", "linux", "Linux", "cpython", "CPython", "", "win32", "86", "3.13 ", "v3.12", "2.7"}
	markerOps = []string{"==", "!=", "<", "<=", ">", ">=", "~=", "===", "in", "not in"}
)

func randomMarker(r *rand.Rand, depth int) string {
	if depth < 3 && r.IntN(3) == 0 {
		op := []string{"and", "or"}[r.IntN(2)]
		s := randomMarker(r, depth+1) + " " + op + " " + randomMarker(r, depth+1)
		if r.IntN(2) == 0 {
			s = "(" + s + ")"
		}
		return s
	}
	v := markerVars[r.IntN(len(markerVars))]
	op := markerOps[r.IntN(len(markerOps))]
	val := `"` + markerValues[r.IntN(len(markerValues))] + `"`
	if r.IntN(4) == 0 {
		val = "'" + val[1:len(val)-1] + "'"
	}
	if r.IntN(5) == 0 {
		return val + " " + op + " " + v
	}
	return v + " " + op + " " + val
}

// generateLock makes a random lock over four targets that passes Check:
// every package has either a wheel for each target its marker selects or
// an sdist to fall back on.
func generateLock(r *rand.Rand) *lockfile.Lock {
	l := &lockfile.Lock{
		LockVersion: lockfile.Version, CreatedBy: "bitpoll-install 0.1.0", RequiresPython: ">=3.12,<3.15", Glibc: "2.28",
		Targets: []string{"cp312-x86_64", "cp313-x86_64", "cp313-aarch64", "cp314-aarch64"},
		App: lockfile.App{Name: "bitpoll", Version: "0.11.0", URL: "https://github.com/fsinfuhh/Bitpoll",
			Commit: "6d863fecf2489bbb8e6239936849a594bef489f1", Tree: "dd84e479307b3a6adffd83dcd02c34cafb93fcb2", Requirements: "requirements.txt"},
	}
	if r.IntN(2) == 0 {
		l.App.NarHash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
	}
	pythons := []string{"cp312", "cp313", "cp314"}
	plats := []string{"manylinux_2_17_x86_64.manylinux2014_x86_64", "manylinux_2_28_x86_64", "manylinux1_x86_64",
		"manylinux_2_17_aarch64.manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_26_aarch64.manylinux_2_28_aarch64"}
	markers := []string{"", "", `python_version < "3.13"`, `platform_machine == "aarch64"`, `python_version >= "3.13" and platform_machine == "x86_64"`,
		`sys_platform == "win32"`, `python_full_version ~= "3.12.0" or platform_machine != "x86_64"`, `implementation_name == "cpython"`}
	file := func(name string, n int) lockfile.File {
		return lockfile.File{Name: name, URL: "https://files.pythonhosted.org/packages/" + name, Size: int64(1000 + n),
			UploadTime: "2025-01-01T00:00:00Z", SHA256: fmt.Sprintf("%064x", n)}
	}
	targets, err := l.ParsedTargets()
	if err != nil {
		panic(err)
	}
	hash := 0
	next := func() int { hash++; return hash }
	build := []string{"setuptools", "wheel", "cython"}
	for _, b := range build {
		l.Packages = append(l.Packages, lockfile.Package{Name: b, Version: "1.0", BuildOnly: true,
			Wheels: []lockfile.File{file(b+"-1.0-py3-none-any.whl", next())}})
	}
	for i := range 12 {
		name := fmt.Sprintf("pkg%d", i)
		p := lockfile.Package{Name: name, Version: "2.0", Marker: markers[r.IntN(len(markers))]}
		seen := map[string]bool{}
		for range r.IntN(6) {
			var tag string
			switch r.IntN(4) {
			case 0:
				tag = "py3-none-any"
			case 1:
				py := pythons[r.IntN(len(pythons))]
				tag = py + "-" + py + "-" + plats[r.IntN(len(plats))]
			case 2:
				tag = "cp3" + fmt.Sprint(8+r.IntN(4)) + "-abi3-" + plats[r.IntN(len(plats))]
			default:
				tag = "py2.py3-none-any"
			}
			fn := name + "-2.0-" + tag + ".whl"
			if !seen[fn] {
				seen[fn] = true
				p.Wheels = append(p.Wheels, file(fn, next()))
			}
		}
		// Keep only wheels some target can use, and fall back to an sdist
		// where a selected target has none, as Check demands.
		p.Wheels = slices.DeleteFunc(p.Wheels, func(w lockfile.File) bool {
			f, _ := wheeltag.ParseFilename(w.Name)
			return !slices.ContainsFunc(targets, func(t wheeltag.Target) bool { _, ok := t.Rank(f); return ok })
		})
		// A package with wheels marks its sdist for exactly the selected
		// targets no wheel fits (sdist-targets); one without builds it
		// everywhere.
		var uncovered []string
		for _, t := range targets {
			m, _ := pep508.ParseMarker(p.Marker)
			if _, ok := p.Pick(t); m.Evaluate(pep508.LinuxCPython(t.Minor, t.Arch), nil) && !ok {
				uncovered = append(uncovered, t.String())
			}
		}
		if len(uncovered) > 0 || len(p.Wheels) == 0 {
			f := file(name+"-2.0.tar.gz", next())
			p.Sdist = &f
			p.BuildRequires = build[:1+r.IntN(len(build))]
			if len(p.Wheels) > 0 {
				p.SdistTargets = uncovered
			}
		}
		l.Packages = append(l.Packages, p)
	}
	return l
}

// TestSystems checks lock.nix's systems, which the flake advertises: one
// Nix system per CPU of the lock's targets, as lockfile parses them.
func TestSystems(t *testing.T) {
	for _, c := range []struct {
		targets []string
		want    []string
	}{
		{[]string{"cp312-x86_64", "cp313-x86_64", "cp314-x86_64"}, []string{"x86_64-linux"}},
		{[]string{"cp313-x86_64", "cp313-aarch64", "cp312-x86_64"}, []string{"x86_64-linux", "aarch64-linux"}},
		{[]string{"cp313-aarch64"}, []string{"aarch64-linux"}},
	} {
		var want []string
		for _, s := range c.targets {
			tg, err := wheeltag.ParseTarget(s, wheeltag.Glibc{Major: 2, Minor: 28})
			if err != nil {
				t.Fatal(err)
			}
			if sys := tg.Arch + "-linux"; !slices.Contains(want, sys) {
				want = append(want, sys)
			}
		}
		if !slices.Equal(want, c.want) {
			t.Fatalf("table: lockfile makes %q of %q, the table says %q", want, c.targets, c.want)
		}
		list, _ := json.Marshal(c.targets)
		out, err := evalJSON(t, fmt.Sprintf(`(import %s).systems { targets = builtins.fromJSON %s; }`, nixStr(repoRoot(t)+"/nix/lock.nix"), nixStr(string(list))))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("lock.nix systems %q = %q, want %q", c.targets, got, want)
		}
	}
}
