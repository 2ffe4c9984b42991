package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The setuptools release the slow tests build with. Its hash is read from
// PyPI, not written here, so the test checks the download against the index.
const (
	setuptoolsWheel = "setuptools-80.9.0-py3-none-any.whl"
	simpleAPI       = "https://pypi.org/simple/setuptools/"
)

// setuptoolsFromPyPI returns the setuptools wheel, downloaded once into a
// per-user test cache and checked against the sha256 PyPI's JSON simple
// API gives. It skips the test when PyPI cannot be reached.
func setuptoolsFromPyPI(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", simpleAPI, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.pypi.simple.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Skipf("PyPI is unreachable: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Skipf("PyPI answered %s for %s", resp.Status, simpleAPI)
	}
	var page struct {
		Files []struct {
			Filename string            `json:"filename"`
			URL      string            `json:"url"`
			Hashes   map[string]string `json:"hashes"`
		} `json:"files"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatalf("decode %s: %v", simpleAPI, err)
	}
	var url, want string
	for _, f := range page.Files {
		if f.Filename == setuptoolsWheel {
			url, want = f.URL, f.Hashes["sha256"]
		}
	}
	if url == "" || want == "" {
		t.Fatalf("%s lists no %s with a sha256", simpleAPI, setuptoolsWheel)
	}

	dir := t.TempDir()
	if c, err := os.UserCacheDir(); err == nil {
		dir = filepath.Join(c, "bitpoll-install-test", "wheels")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, setuptoolsWheel)
	if got, err := fileSHA256(path); err == nil && got == want {
		return path
	}
	tmp, err := os.CreateTemp(dir, ".download-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	req, err = http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	dl, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Skipf("files.pythonhosted.org is unreachable: %v", err)
	}
	defer dl.Body.Close()
	if dl.StatusCode != http.StatusOK {
		t.Fatalf("download %s: %s", url, dl.Status)
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(dl.Body, 64<<20)); err != nil {
		t.Fatalf("download %s: %v", url, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		t.Fatalf("download %s: sha256 %s, want %s from PyPI", url, got, want)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Fatal(err)
	}
	return path
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
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
