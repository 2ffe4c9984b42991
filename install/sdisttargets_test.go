package install

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/pyenv/build"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// demoBackend is an in-tree PEP 517 backend: it zips demo_pkg.py into a
// pure-Python wheel, so that building the sdist needs no package at all.
const demoBackend = `import base64, hashlib, os, zipfile


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    di = "demo_pkg-1.0.dist-info/"
    files = {
        "demo_pkg.py": open("demo_pkg.py", "rb").read(),
        di + "METADATA": b"Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n",
        di + "WHEEL": b"Wheel-Version: 1.0\nGenerator: demo\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = ""
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += "%s,sha256=%s,%d\n" % (name, digest, len(data))
    files[di + "RECORD"] = (record + di + "RECORD,,\n").encode()
    name = "demo_pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    return name
`

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

	sdist := writeTarGz(t, filepath.Join(dir, "demo_pkg-1.0.tar.gz"), "demo_pkg-1.0", map[string]string{
		"PKG-INFO":                 "Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n",
		"pyproject.toml":           "[build-system]\nrequires = []\nbuild-backend = \"demo_backend\"\nbackend-path = [\"_backend\"]\n",
		"_backend/demo_backend.py": demoBackend,
		"demo_pkg.py":              "VALUE = 'built from the sdist'\n",
	})

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

func writeTarGz(t *testing.T, path, top string, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	dirs := map[string]bool{}
	for _, n := range names {
		for d := filepath.Dir(top + "/" + n); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	var ds []string
	for d := range dirs {
		ds = append(ds, d)
	}
	sort.Strings(ds)
	for _, d := range ds {
		if err := tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: top + "/" + n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[n]))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeDemoWheel writes demo-pkg 1.0 as a wheel with the given tag.
func writeDemoWheel(t *testing.T, path, tag string) string {
	t.Helper()
	di := "demo_pkg-1.0.dist-info/"
	files := map[string]string{
		"demo_pkg.py":   "VALUE = 'installed from the wheel'\n",
		di + "METADATA": "Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n",
		di + "WHEEL":    "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\nTag: " + tag + "\n",
	}
	names := []string{"demo_pkg.py", di + "METADATA", di + "WHEEL"}
	var record strings.Builder
	for _, n := range names {
		sum := sha256.Sum256([]byte(files[n]))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", n, base64.RawURLEncoding.EncodeToString(sum[:]), len(files[n]))
	}
	record.WriteString(di + "RECORD,,\n")
	files[di+"RECORD"] = record.String()
	names = append(names, di+"RECORD")
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
