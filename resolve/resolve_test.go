package resolve

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/pyspec/wheeltag"
)

type notes []string

func (n *notes) Notef(format string, args ...any) { *n = append(*n, fmt.Sprintf(format, args...)) }

func (n notes) has(sub string) bool {
	return slices.ContainsFunc(n, func(s string) bool { return strings.Contains(s, sub) })
}

func mustTargets(t *testing.T, names ...string) []wheeltag.Target {
	t.Helper()
	g, err := wheeltag.ParseGlibc("2.28")
	if err != nil {
		t.Fatal(err)
	}
	var out []wheeltag.Target
	for _, n := range names {
		tg, err := wheeltag.ParseTarget(n, g)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tg)
	}
	return out
}

func mustReqs(t *testing.T, lines ...string) []Requirement {
	t.Helper()
	reqs, err := ParseRequirements([]byte(strings.Join(lines, "\n")), "requirements.txt")
	if err != nil {
		t.Fatal(err)
	}
	return reqs
}

func resolveWith(t *testing.T, fi *fakeIndex, in Input) ([]lockfile.Package, notes, error) {
	t.Helper()
	var n notes
	pkgs, err := Resolve(context.Background(), fi.client(), in, &n)
	return pkgs, n, err
}

func find(pkgs []lockfile.Package, name string) *lockfile.Package {
	for i := range pkgs {
		if pkgs[i].Name == name {
			return &pkgs[i]
		}
	}
	return nil
}

func wheelNames(p *lockfile.Package) []string {
	var out []string
	for _, w := range p.Wheels {
		out = append(out, w.Name)
	}
	return out
}

func TestResolvePinnedClosure(t *testing.T) {
	fi := newFakeIndex(t,
		dist{name: "Django", version: "6.0.5", requires: []string{"asgiref>=3.9", "sqlparse>=0.5"}, wheelTags: []string{"py3-none-any"}, sdist: true},
		dist{name: "asgiref", version: "3.11.1", wheelTags: []string{"py3-none-any"}},
		dist{name: "sqlparse", version: "0.5.5", wheelTags: []string{"py3-none-any"}},
	)
	pkgs, n, err := resolveWith(t, fi, Input{
		Requirements: mustReqs(t, "django==6.0.5", "asgiref==3.11.1", "sqlparse==0.5.5"),
		Targets:      mustTargets(t, "cp312-x86_64", "cp313-aarch64"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 3 {
		t.Fatalf("got %d packages, want 3", len(pkgs))
	}
	dj := find(pkgs, "django")
	if dj == nil || dj.Version != "6.0.5" || dj.Sdist != nil || len(dj.Wheels) != 1 || dj.Wheels[0].Name != "django-6.0.5-py3-none-any.whl" {
		t.Fatalf("django = %+v, want the one py3-none-any wheel and no sdist", dj)
	}
	if dj.Marker != "" {
		t.Errorf("django marker = %q, want none (needed on every target)", dj.Marker)
	}
	if !strings.HasPrefix(dj.Wheels[0].URL, fi.srv.URL+"/files/") || len(dj.Wheels[0].SHA256) != 64 || dj.Wheels[0].Size <= 0 {
		t.Errorf("django wheel = %+v, want absolute URL, sha256 and size", dj.Wheels[0])
	}
	if len(n) != 0 {
		t.Errorf("notes = %q, want none: everything was pinned", n)
	}
	// Locking reads metadata, never wheels.
	for p, c := range fi.requests {
		if strings.HasSuffix(p, ".whl") {
			t.Errorf("downloaded %s %d times while locking", p, c)
		}
	}
}

func TestResolveBestWheelPerTarget(t *testing.T) {
	fi := newFakeIndex(t, dist{name: "lxml", version: "6.1.0", wheelTags: []string{
		"cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
		"cp312-cp312-manylinux_2_28_x86_64",
		"cp312-cp312-manylinux_2_34_x86_64", // above the glibc floor
		"cp312-cp312-manylinux_2_17_aarch64",
		"cp313-cp313-manylinux_2_17_x86_64",
		"cp39-abi3-manylinux_2_28_x86_64",
		"cp312-cp312-win_amd64",
	}})
	pkgs, _, err := resolveWith(t, fi, Input{
		Requirements: mustReqs(t, "lxml==6.1.0"),
		Targets:      mustTargets(t, "cp312-x86_64", "cp312-aarch64", "cp313-x86_64", "cp314-x86_64"),
	})
	if err != nil {
		t.Fatal(err)
	}
	got := wheelNames(find(pkgs, "lxml"))
	want := []string{
		"lxml-6.1.0-cp312-cp312-manylinux_2_17_aarch64.whl",
		"lxml-6.1.0-cp312-cp312-manylinux_2_28_x86_64.whl",
		"lxml-6.1.0-cp313-cp313-manylinux_2_17_x86_64.whl",
		"lxml-6.1.0-cp39-abi3-manylinux_2_28_x86_64.whl", // cp314 falls back to abi3
	}
	if !slices.Equal(got, want) {
		t.Errorf("wheels = %q, want %q", got, want)
	}
}

func TestResolveUnpinnedIsReported(t *testing.T) {
	late := epoch.Add(48 * time.Hour)
	fi := newFakeIndex(t,
		dist{name: "gunicorn", version: "27.0.1", requires: []string{"packaging"}, wheelTags: []string{"py3-none-any"}},
		dist{name: "packaging", version: "24.0", wheelTags: []string{"py3-none-any"}},
		dist{name: "packaging", version: "25.0", wheelTags: []string{"py3-none-any"}},
		dist{name: "packaging", version: "26.0rc1", wheelTags: []string{"py3-none-any"}},              // prerelease
		dist{name: "packaging", version: "25.1", wheelTags: []string{"py3-none-any"}, yanked: true},   // yanked
		dist{name: "packaging", version: "25.2", wheelTags: []string{"py3-none-any"}, uploaded: late}, // after the cut-off
	)
	pkgs, n, err := resolveWith(t, fi, Input{
		Extra:        mustReqs(t, "gunicorn==27.0.1"),
		Targets:      mustTargets(t, "cp313-x86_64"),
		ExcludeNewer: epoch.Add(24 * time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	if p := find(pkgs, "packaging"); p == nil || p.Version != "25.0" {
		t.Fatalf("packaging = %+v, want 25.0 (newest that is final, not yanked, not after the cut-off)", p)
	}
	if !n.has("resolved packaging to 25.0") || !n.has("gunicorn 27.0.1") {
		t.Errorf("notes = %q, want one saying packaging was resolved to 25.0 for gunicorn", n)
	}
}

func TestResolvePinConflict(t *testing.T) {
	fi := newFakeIndex(t,
		dist{name: "django-markdownify", version: "0.9.6", requires: []string{"bleach[css]>=7"}, wheelTags: []string{"py3-none-any"}},
		dist{name: "bleach", version: "6.3.0", wheelTags: []string{"py3-none-any"}, extras: []string{"css"}},
	)
	_, _, err := resolveWith(t, fi, Input{
		Requirements: mustReqs(t, "django-markdownify==0.9.6", "bleach==6.3.0"),
		Targets:      mustTargets(t, "cp313-x86_64"),
	})
	if err == nil {
		t.Fatal("resolved a pin that violates a dependency's specifier")
	}
	for _, want := range []string{"django-markdownify 0.9.6 requires bleach>=7", "requirements.txt:2 pins bleach 6.3.0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error = %q, want it to contain %q", err, want)
		}
	}
}

func TestResolveMissingWheelNamesNearest(t *testing.T) {
	// Without an sdist to fall back on, a target with no wheel for a pin is
	// an error naming the nearest versions that have one.
	fi := newFakeIndex(t,
		dist{name: "libsass", version: "0.22.0", wheelTags: []string{"cp37-abi3-manylinux_2_17_x86_64", "cp37-abi3-manylinux_2_17_aarch64"}, sdist: true},
		dist{name: "libsass", version: "0.23.0", wheelTags: []string{"cp38-abi3-manylinux_2_5_x86_64.manylinux1_x86_64"}},
	)
	_, _, err := resolveWith(t, fi, Input{
		Requirements: mustReqs(t, "libsass==0.23.0"),
		Targets:      mustTargets(t, "cp312-x86_64", "cp312-aarch64"),
	})
	if err == nil {
		t.Fatal("locked a pin that has neither a wheel nor an sdist for cp312-aarch64")
	}
	for _, want := range []string{"libsass 0.23.0", "no wheel and no sdist", "cp312-aarch64", "0.22.0 (older)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error = %q, want it to contain %q", err, want)
		}
	}
}

// TestResolveSdistForTargetsWithoutWheel: a pin with wheels for x86_64 and
// none for aarch64 is locked with its wheels and its sdist, the sdist
// marked for exactly the aarch64 targets, its build requirements locked
// build-only for those targets, and its runtime dependencies there taken
// from the wheels' metadata.
func TestResolveSdistForTargetsWithoutWheel(t *testing.T) {
	fi := newFakeIndex(t,
		dist{name: "libsass", version: "0.23.0", requires: []string{"six>=1"}, wheelTags: []string{"cp38-abi3-manylinux_2_5_x86_64.manylinux1_x86_64"}, sdist: true, buildRequires: []string{"setuptools>=61"}},
		dist{name: "six", version: "1.17.0", wheelTags: []string{"py2.py3-none-any"}},
		dist{name: "setuptools", version: "80.9.0", wheelTags: []string{"py3-none-any"}},
	)
	targets := mustTargets(t, "cp312-aarch64", "cp312-x86_64", "cp313-aarch64", "cp313-x86_64")
	pkgs, n, err := resolveWith(t, fi, Input{Requirements: mustReqs(t, "libsass==0.23.0"), Targets: targets})
	if err != nil {
		t.Fatal(err)
	}
	ls := find(pkgs, "libsass")
	if ls == nil || ls.Sdist == nil || ls.Sdist.Name != "libsass-0.23.0.tar.gz" {
		t.Fatalf("libsass = %+v, want its sdist locked", ls)
	}
	if got := wheelNames(ls); !slices.Equal(got, []string{"libsass-0.23.0-cp38-abi3-manylinux_2_5_x86_64.manylinux1_x86_64.whl"}) {
		t.Errorf("libsass wheels = %q, want the x86_64 wheel", got)
	}
	if want := []string{"cp312-aarch64", "cp313-aarch64"}; !slices.Equal(ls.SdistTargets, want) {
		t.Errorf("libsass sdist-targets = %q, want %q", ls.SdistTargets, want)
	}
	if !slices.Equal(ls.BuildRequires, []string{"setuptools"}) || ls.Marker != "" {
		t.Errorf("libsass build-requires = %q, marker %q; want [setuptools] and no marker", ls.BuildRequires, ls.Marker)
	}
	st := find(pkgs, "setuptools")
	if st == nil || !st.BuildOnly || st.Marker != `platform_machine == "aarch64"` {
		t.Errorf("setuptools = %+v, want build-only for the aarch64 targets", st)
	}
	if six := find(pkgs, "six"); six == nil || six.BuildOnly || six.Marker != "" {
		t.Errorf("six = %+v, want a runtime entry on every target (the aarch64 ones from the wheel's metadata)", six)
	}
	if !n.has("libsass 0.23.0 has no wheel for cp312-aarch64, cp313-aarch64") {
		t.Errorf("notes = %q, want the marked sdist reported with its targets", n)
	}
	// The lock these entries make passes Check and selects per target.
	l := &lockfile.Lock{LockVersion: lockfile.Version, CreatedBy: "test", RequiresPython: ">=3.12,<3.14", Glibc: "2.28",
		Targets:  []string{"cp312-aarch64", "cp312-x86_64", "cp313-aarch64", "cp313-x86_64"},
		App:      lockfile.App{Name: "bitpoll", Version: "0.11.0", URL: "https://example.org/bitpoll", Tree: strings.Repeat("a", 40), Requirements: "requirements.txt"},
		Packages: pkgs}
	if err := l.Check(); err != nil {
		t.Fatalf("Check() = %v", err)
	}
	for _, tg := range targets {
		sel, err := l.ForTarget(tg)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sel {
			if s.Package.Name == "libsass" && s.IsSdist != (tg.Arch == "aarch64") {
				t.Errorf("ForTarget(%s) libsass = %s, want the sdist only on aarch64", tg, s.File.Name)
			}
		}
	}
}

func TestResolveNoFileAtAll(t *testing.T) {
	fi := newFakeIndex(t,
		dist{name: "winonly", version: "1.0", wheelTags: []string{"cp312-cp312-win_amd64"}},
	)
	_, _, err := resolveWith(t, fi, Input{Requirements: mustReqs(t, "winonly==1.0"), Targets: mustTargets(t, "cp312-x86_64")})
	if err == nil || !strings.Contains(err.Error(), "no wheel and no sdist for target cp312-x86_64") || !strings.Contains(err.Error(), "no version of it has one") {
		t.Errorf("error = %v, want one naming the missing wheel and sdist for cp312-x86_64", err)
	}
}

func TestResolveSdistOnlyPin(t *testing.T) {
	fi := newFakeIndex(t,
		dist{name: "django-simple-csp", version: "0.5.dev1", sdist: true, buildRequires: []string{"hatchling>=1.20"}},
		dist{name: "legacy-app", version: "1.0", sdist: true}, // setup.py only
		dist{name: "hatchling", version: "1.27.0", requires: []string{"pathspec>=0.10"}, wheelTags: []string{"py3-none-any"}},
		dist{name: "pathspec", version: "0.12.1", wheelTags: []string{"py3-none-any"}},
		dist{name: "setuptools", version: "80.9.0", wheelTags: []string{"py3-none-any"}},
	)
	pkgs, n, err := resolveWith(t, fi, Input{
		Requirements: mustReqs(t, "django-simple-csp==0.5.dev1", "legacy-app==1.0"),
		Targets:      mustTargets(t, "cp312-x86_64", "cp313-x86_64"),
	})
	if err != nil {
		t.Fatal(err)
	}
	csp := find(pkgs, "django-simple-csp")
	if csp == nil || csp.Sdist == nil || len(csp.Wheels) != 0 || !slices.Equal(csp.BuildRequires, []string{"hatchling"}) || csp.BuildOnly {
		t.Fatalf("django-simple-csp = %+v, want an sdist entry that build-requires hatchling", csp)
	}
	legacy := find(pkgs, "legacy-app")
	if legacy == nil || legacy.Sdist == nil || !slices.Equal(legacy.BuildRequires, []string{"setuptools"}) {
		t.Fatalf("legacy-app = %+v, want an sdist that build-requires setuptools (PEP 517 default)", legacy)
	}
	for _, name := range []string{"hatchling", "pathspec", "setuptools"} {
		if p := find(pkgs, name); p == nil || !p.BuildOnly {
			t.Errorf("%s = %+v, want a build-only entry", name, p)
		}
	}
	if !n.has("django-simple-csp 0.5.dev1 has no wheel") {
		t.Errorf("notes = %q, want the sdist pin reported", n)
	}
}

func TestResolveMarkersAndExtras(t *testing.T) {
	fi := newFakeIndex(t,
		dist{name: "bleach", version: "6.3.0", extras: []string{"css"}, wheelTags: []string{"py3-none-any"},
			requires: []string{"webencodings", `tinycss2<1.5,>=1.1.0; extra == "css"`, `backport>=1; python_version < "3.13"`, `pywin; sys_platform == "win32"`}},
		dist{name: "webencodings", version: "0.5.1", wheelTags: []string{"py2.py3-none-any"}},
		dist{name: "tinycss2", version: "1.4.0", wheelTags: []string{"py3-none-any"}},
		dist{name: "tinycss2", version: "1.5.0", wheelTags: []string{"py3-none-any"}},
		dist{name: "backport", version: "1.2", wheelTags: []string{"py3-none-any"}},
	)
	pkgs, _, err := resolveWith(t, fi, Input{
		Requirements: mustReqs(t, "bleach[css]==6.3.0", "webencodings==0.5.1"),
		Targets:      mustTargets(t, "cp312-x86_64", "cp312-aarch64", "cp313-x86_64", "cp313-aarch64"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if p := find(pkgs, "tinycss2"); p == nil || p.Version != "1.4.0" {
		t.Errorf("tinycss2 = %+v, want 1.4.0 through the css extra (<1.5)", p)
	}
	if p := find(pkgs, "backport"); p == nil || p.Marker != `python_version == "3.12"` {
		t.Errorf("backport = %+v, want marker python_version == \"3.12\"", p)
	}
	if p := find(pkgs, "pywin"); p != nil {
		t.Errorf("pywin was locked for Linux targets: %+v", p)
	}
}

func TestResolveArchMarker(t *testing.T) {
	fi := newFakeIndex(t,
		dist{name: "app", version: "1", requires: []string{`fastlib; platform_machine == "x86_64"`}, wheelTags: []string{"py3-none-any"}},
		dist{name: "fastlib", version: "2", wheelTags: []string{"py3-none-any"}},
	)
	pkgs, _, err := resolveWith(t, fi, Input{
		Requirements: mustReqs(t, "app==1", "fastlib==2"),
		Targets:      mustTargets(t, "cp312-x86_64", "cp312-aarch64", "cp313-x86_64", "cp313-aarch64"),
	})
	if err != nil {
		t.Fatal(err)
	}
	// fastlib is pinned for all targets, so it is needed on all of them.
	if p := find(pkgs, "fastlib"); p == nil || p.Marker != "" {
		t.Errorf("fastlib = %+v, want no marker: the pin applies everywhere", p)
	}
	pkgs, _, err = resolveWith(t, fi, Input{
		Requirements: mustReqs(t, "app==1"),
		Targets:      mustTargets(t, "cp312-x86_64", "cp312-aarch64", "cp313-x86_64", "cp313-aarch64"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if p := find(pkgs, "fastlib"); p == nil || p.Marker != `platform_machine == "x86_64"` {
		t.Errorf("fastlib = %+v, want marker platform_machine == \"x86_64\"", p)
	}
}

func TestResolvePinNotOnIndex(t *testing.T) {
	fi := newFakeIndex(t, dist{name: "six", version: "1.16.0", wheelTags: []string{"py2.py3-none-any"}})
	_, _, err := resolveWith(t, fi, Input{Requirements: mustReqs(t, "", "six==1.17.0"), Targets: mustTargets(t, "cp313-x86_64")})
	if err == nil || !strings.Contains(err.Error(), "requirements.txt:2: six 1.17.0 is not on the index") {
		t.Errorf("error = %v, want it to name the file, line, package and version", err)
	}
	_, _, err = resolveWith(t, fi, Input{Requirements: mustReqs(t, "nosuch==1.0"), Targets: mustTargets(t, "cp313-x86_64")})
	if err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("error = %v, want it to name the unknown project", err)
	}
}

func TestResolveRequiresPythonExcludesTarget(t *testing.T) {
	fi := newFakeIndex(t, dist{name: "django", version: "6.0.5", requiresPython: ">=3.12", wheelTags: []string{"py3-none-any"}})
	_, _, err := resolveWith(t, fi, Input{Requirements: mustReqs(t, "django==6.0.5"), Targets: mustTargets(t, "cp311-x86_64", "cp312-x86_64")})
	if err == nil || !strings.Contains(err.Error(), "django 6.0.5") || !strings.Contains(err.Error(), "cp311-x86_64") {
		t.Errorf("error = %v, want it to name django 6.0.5 and the target cp311-x86_64", err)
	}
	pkgs, _, err := resolveWith(t, fi, Input{Requirements: mustReqs(t, "django==6.0.5"), Targets: mustTargets(t, "cp312-x86_64")})
	if err != nil {
		t.Fatal(err)
	}
	if got := find(pkgs, "django").RequiresPython; got != ">=3.12" {
		t.Errorf("requires-python = %q, want >=3.12", got)
	}
}

func TestResolveBacktracksUnpinned(t *testing.T) {
	// The newest helper needs core>=2, but the app pins core 1: the
	// resolver must fall back to the helper that accepts core 1.
	fi := newFakeIndex(t,
		dist{name: "app", version: "1", requires: []string{"helper"}, wheelTags: []string{"py3-none-any"}},
		dist{name: "helper", version: "1.0", requires: []string{"core>=1"}, wheelTags: []string{"py3-none-any"}},
		dist{name: "helper", version: "2.0", requires: []string{"core>=2"}, wheelTags: []string{"py3-none-any"}},
		dist{name: "core", version: "1", wheelTags: []string{"py3-none-any"}},
		dist{name: "core", version: "2", wheelTags: []string{"py3-none-any"}},
	)
	pkgs, _, err := resolveWith(t, fi, Input{Requirements: mustReqs(t, "app==1", "core==1"), Targets: mustTargets(t, "cp313-x86_64")})
	if err == nil {
		if p := find(pkgs, "helper"); p == nil || p.Version != "1.0" {
			t.Errorf("helper = %+v, want 1.0", p)
		}
		return
	}
	t.Fatalf("resolve: %v (want helper 1.0, which accepts the pinned core 1)", err)
}

func TestResolveIsDeterministic(t *testing.T) {
	fi := newFakeIndex(t,
		dist{name: "a", version: "1", requires: []string{"b", "c"}, wheelTags: []string{"py3-none-any"}},
		dist{name: "b", version: "1", requires: []string{"c>=1"}, wheelTags: []string{"cp312-cp312-manylinux_2_17_x86_64", "cp313-cp313-manylinux_2_17_x86_64"}},
		dist{name: "c", version: "1", wheelTags: []string{"py3-none-any"}},
		dist{name: "c", version: "2", wheelTags: []string{"py3-none-any"}},
	)
	in := Input{Requirements: mustReqs(t, "a==1"), Targets: mustTargets(t, "cp313-x86_64", "cp312-x86_64")}
	first, _, err := resolveWith(t, fi, in)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		again, _, err := resolveWith(t, fi, in)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(again) != fmt.Sprint(first) {
			t.Fatalf("run %d differs:\n%v\nwant\n%v", i, again, first)
		}
	}
}
