package install

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testarchive"
	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/pyenv/build"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// TestInstallSdistOnlyOnMarkedTargets installs the fixture app with a
// package that has a wheel for one target and its sdist marked (in
// sdist-targets) for the other. On the host's target it is built from
// the sdist when the host is marked, once, cached by the sdist's hash and
// the target; when the host has the wheel, the wheel is installed and
// nothing is built.
func TestInstallSdistOnlyOnMarkedTargets(t *testing.T) {
	testkit.NeedNetwork(t)
	it := testkit.HostPython(t)
	host := testkit.Target(it)
	minor := strings.TrimPrefix(it.Minor, "3.")
	otherMinor := "13"
	if minor == "13" {
		otherMinor = "12"
	}
	other := "cp3" + otherMinor + "-" + it.Arch
	base := testkit.LockFixture(t, host)
	dir := t.TempDir()

	sdist := testarchive.Write(t, filepath.Join(dir, "demo_pkg-1.0.tar.gz"), testarchive.DemoSdist{Value: "built from the sdist"}.TarGz(t))

	for _, tc := range []struct {
		name        string
		wheelFor    string // the target whose wheel the lock has
		sdistFor    string // the target marked in sdist-targets
		wantValue   string
		wantBuilt   bool
		wantIsSdist bool
	}{
		{"host builds the sdist", other, host, "built from the sdist", true, true},
		{"host has the wheel", host, other, "installed from the wheel", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			py := strings.SplitN(tc.wheelFor, "-", 2)[0]
			wname := fmt.Sprintf("demo_pkg-1.0-%s-%s-manylinux_2_17_%s.whl", py, py, it.Arch)
			whl := writeDemoWheel(t, filepath.Join(t.TempDir(), wname), py+"-"+py+"-manylinux_2_17_"+it.Arch)

			l := *base
			l.Targets = []string{host, other}
			l.Packages = append(append([]lockfile.Package(nil), base.Packages...), lockfile.Package{
				Name: "demo-pkg", Version: "1.0",
				Sdist:        fileEntry(t, sdist),
				SdistTargets: []string{tc.sdistFor},
				Wheels:       []lockfile.File{*fileEntry(t, whl)},
			})
			l.App.PackagesDigest = l.Digest()
			if err := l.Check(); err != nil {
				t.Fatalf("the test lock does not pass Check: %v", err)
			}

			layout := store.Layout{Root: t.TempDir()}
			res, err := Build(context.Background(), Options{Lock: &l, Layout: layout, Python: it.Path, AppSource: testkit.FixtureApp()})
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(filepath.Join(res.Path, VenvDir, "bin", "python"), "-c", "import demo_pkg; print(demo_pkg.VALUE)").CombinedOutput()
			if err != nil {
				t.Fatalf("import demo_pkg in the venv: %v\n%s", err, out)
			}
			if got := strings.TrimSpace(string(out)); got != tc.wantValue {
				t.Errorf("demo_pkg.VALUE on %s = %q, want %q", host, got, tc.wantValue)
			}
			builds, _ := filepath.Glob(filepath.Join(layout.CacheDir(), build.CacheLayout, "*"))
			want := filepath.Join(layout.CacheDir(), build.CacheLayout, fileEntry(t, sdist).SHA256+"-"+host)
			switch {
			case tc.wantBuilt && (len(builds) != 1 || builds[0] != want):
				t.Errorf("build cache = %q, want one build, %s", builds, want)
			case !tc.wantBuilt && len(builds) != 0:
				t.Errorf("build cache = %q, want nothing built where the host has a wheel", builds)
			}
		})
	}
}

// fileEntry is the lock entry of a local file, fetched by file URL.
func fileEntry(t *testing.T, path string) *lockfile.File {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return &lockfile.File{Name: filepath.Base(path), URL: "file://" + path, Size: int64(len(data)),
		UploadTime: "2025-01-01T00:00:00Z", SHA256: hex.EncodeToString(sum[:])}
}

// writeDemoWheel writes demo-pkg 1.0 as a wheel with the given tag.
func writeDemoWheel(t *testing.T, path, tag string) string {
	t.Helper()
	di := "demo_pkg-1.0.dist-info"
	return testarchive.Write(t, path, testarchive.Wheel(t, di,
		testarchive.Member{Name: "demo_pkg.py", Body: "VALUE = 'installed from the wheel'\n"},
		testarchive.Member{Name: di + "/METADATA", Body: "Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n"},
		testarchive.Member{Name: di + "/WHEEL", Body: "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\nTag: " + tag + "\n"},
	))
}
