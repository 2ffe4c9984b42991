package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/fetch"
	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/resolve/index"
)

// The setuptools release the slow tests build with. Its hash is read from
// PyPI, not written here, so the test checks the download against the index.
const setuptoolsWheel = "setuptools-80.9.0-py3-none-any.whl"

// setuptoolsFromPyPI returns the setuptools wheel, downloaded once into a
// per-user test cache and checked against the size and sha256 PyPI's JSON
// simple API gives. It skips the test when PyPI cannot be reached.
func setuptoolsFromPyPI(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	testkit.NeedNetwork(t)
	p, err := index.New(index.Options{}).Project(ctx, "setuptools")
	if err != nil {
		testenv.Skipf(t, "PyPI's page for setuptools: %v", err)
	}
	i := slices.IndexFunc(p.Files, func(f index.File) bool { return f.Filename == setuptoolsWheel })
	if i < 0 || p.Files[i].SHA256 == "" || p.Files[i].Size == 0 {
		t.Fatalf("PyPI lists no %s with a size and sha256", setuptoolsWheel)
	}
	f := p.Files[i]
	cache := t.TempDir()
	if c, err := os.UserCacheDir(); err == nil {
		cache = filepath.Join(c, "bitpoll-install-test")
	}
	d := fetch.Downloader{CacheDir: cache}
	paths, err := d.Fetch(ctx, []fetch.Artifact{{Name: f.Filename, URL: f.URL, Size: f.Size, SHA256: f.SHA256}})
	if err != nil {
		t.Fatal(err)
	}
	// The cache names files by hash; the build venv wants the wheel's name.
	path := filepath.Join(t.TempDir(), setuptoolsWheel)
	if err := os.Symlink(paths[f.SHA256], path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBuildWheelSetuptools(t *testing.T) {
	if testing.Short() {
		t.Skip("builds with setuptools from PyPI; skipped under -short")
	}
	it, target := hostPython(t)
	setuptools := setuptoolsFromPyPI(t)
	tests := []struct {
		name      string
		top       string
		files     map[string]string
		wantWheel string
		module    string
		wantValue string
	}{
		{
			name: "pyproject",
			top:  "tiny_mod-0.1.0",
			files: map[string]string{
				"PKG-INFO": pkgInfo("tiny-mod", "0.1.0"),
				"pyproject.toml": `[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "tiny-mod"
version = "0.1.0"

[tool.setuptools]
py-modules = ["tiny_mod"]
`,
				"tiny_mod.py": "VALUE = 'tiny-mod works'\n",
			},
			wantWheel: "tiny_mod-0.1.0-py3-none-any.whl",
			module:    "tiny_mod",
			wantValue: "tiny-mod works",
		},
		{
			name: "legacy setup.py only",
			top:  "legacy_mod-0.2",
			files: map[string]string{
				"PKG-INFO":      pkgInfo("legacy-mod", "0.2"),
				"setup.py":      "from setuptools import setup\nsetup(name='legacy-mod', version='0.2', py_modules=['legacy_mod'])\n",
				"legacy_mod.py": "VALUE = 'legacy-mod works'\n",
			},
			wantWheel: "legacy_mod-0.2-py3-none-any.whl",
			module:    "legacy_mod",
			wantValue: "legacy-mod works",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			sdist, sum := writeSdist(t, dir, tt.top, tt.files)
			o := Options{Interp: it, BuildWheels: []string{setuptools}, CacheDir: filepath.Join(dir, "cache"), Target: target}
			whl, err := BuildWheel(context.Background(), sdist, sum, o)
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Base(whl) != tt.wantWheel {
				t.Errorf("BuildWheel(%q) = %q, want a wheel named %q", tt.top, whl, tt.wantWheel)
			}
			code := fmt.Sprintf("import %s; print(%s.VALUE)", tt.module, tt.module)
			if got := installAndImport(t, it, whl, code); got != tt.wantValue {
				t.Errorf("python -c %q = %q, want %q", code, got, tt.wantValue)
			}
		})
	}
}
