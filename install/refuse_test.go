package install

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testarchive"
	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/safearchive"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// writeBombWheel writes a well-formed wheel of project name at version
// whose one data member is 1 MiB of zeros: a few KiB on disk, far past
// the ratio the installer allows. It returns its path.
func writeBombWheel(t *testing.T, dir, name, version string) string {
	t.Helper()
	distInfo := name + "-" + version + ".dist-info"
	return testarchive.Write(t, filepath.Join(dir, name+"-"+version+"-py3-none-any.whl"), testarchive.Wheel(t, distInfo,
		testarchive.Member{Name: name + "/__init__.py"},
		testarchive.Member{Name: name + "/bomb.bin", Zeros: 1 << 20},
		testarchive.Member{Name: distInfo + "/METADATA", Body: "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\n"},
		testarchive.Member{Name: distInfo + "/WHEEL", Body: "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	))
}

// TestBuildNamesRefusedWheel locks one package to a zip bomb: the build
// refuses it, names the lock entry (package, version, URL) rather than a
// temporary path and the flag that raises the limit, and puts nothing
// into the store. With the ratio raised as that flag would, the same
// lock builds.
func TestBuildNamesRefusedWheel(t *testing.T) {
	testkit.NeedNetwork(t)
	it := testkit.HostPython(t)
	l := testkit.LockFixture(t, testkit.Target(it))
	var pkg *lockfile.Package
	for i := range l.Packages {
		if l.Packages[i].Name == "sqlparse" {
			pkg = &l.Packages[i]
		}
	}
	if pkg == nil || len(pkg.Wheels) == 0 {
		t.Fatal("the fixture lock has no sqlparse wheel to replace")
	}
	whl := writeBombWheel(t, t.TempDir(), "sqlparse", pkg.Version)
	data, err := os.ReadFile(whl)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	url := "file://" + whl
	pkg.Wheels = []lockfile.File{{Name: filepath.Base(whl), URL: url, Size: int64(len(data)),
		SHA256: hex.EncodeToString(sum[:]), UploadTime: pkg.Wheels[0].UploadTime}}

	layout := store.Layout{Root: t.TempDir()}
	_, err = Build(context.Background(), Options{Lock: l, Layout: layout, Python: it.Path, VenvOnly: true})
	if err == nil {
		t.Fatal("Build with a zip bomb locked for sqlparse succeeded, want a refusal")
	}
	for _, want := range []string{"sqlparse " + pkg.Version + " (" + url + ")", "100 times its own", "--" + safearchive.FlagRatio} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Build = %v, want it to contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), ".named-") {
		t.Errorf("Build = %v, want no temporary path in it", err)
	}
	assertStoreEmpty(t, layout)

	raised := safearchive.Default()
	raised.Ratio = 10_000
	res, err := Build(context.Background(), Options{Lock: l, Layout: layout, Python: it.Path, VenvOnly: true, Unpack: raised})
	if err != nil {
		t.Fatalf("Build with --%s 10000 = %v, want the bomb (about 1,000 times its size) installed", safearchive.FlagRatio, err)
	}
	if fi, err := os.Stat(filepath.Join(res.Path, VenvDir, "lib")); err != nil || !fi.IsDir() {
		t.Errorf("the built store path has no venv: %v", err)
	}
}

// assertStoreEmpty fails t when the store holds a path: a refused build
// may leave only hidden work directories.
func assertStoreEmpty(t *testing.T, layout store.Layout) {
	t.Helper()
	entries, err := os.ReadDir(layout.StoreDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			t.Errorf("the store holds %s after a refused build", e.Name())
		}
	}
}
