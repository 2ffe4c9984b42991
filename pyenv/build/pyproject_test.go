package build

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestReadBackend(t *testing.T) {
	tests := []struct {
		name      string
		pyproject string // "" means no pyproject.toml
		wantSpec  string
		wantPath  []string // relative to the source tree
		wantErr   string
	}{
		{name: "no pyproject.toml", wantSpec: LegacyBackend},
		{name: "no build-system", pyproject: "[project]\nname = \"x\"\n", wantSpec: LegacyBackend},
		{name: "requires only", pyproject: "[build-system]\nrequires = [\"setuptools\"]\n", wantSpec: LegacyBackend},
		{name: "backend", pyproject: "[build-system]\nbuild-backend = \"flit_core.buildapi\"\n", wantSpec: "flit_core.buildapi"},
		{name: "backend object", pyproject: "[build-system]\nbuild-backend = \"pkg.mod : obj.attr\"\n", wantSpec: "pkg.mod:obj.attr"},
		{name: "backend path", pyproject: "[build-system]\nbuild-backend = \"b\"\nbackend-path = [\"tools\", \".\"]\n", wantSpec: "b", wantPath: []string{"tools", "."}},
		{name: "backend path outside", pyproject: "[build-system]\nbuild-backend = \"b\"\nbackend-path = [\"..\"]\n", wantErr: `backend-path entry ".." must be an existing directory inside the source tree`},
		{name: "backend path link outside", pyproject: "[build-system]\nbuild-backend = \"b\"\nbackend-path = [\"out\"]\n", wantErr: `backend-path entry "out"`},
		{name: "backend path absolute", pyproject: "[build-system]\nbuild-backend = \"b\"\nbackend-path = [\"/tmp\"]\n", wantErr: `backend-path entry "/tmp"`},
		{name: "backend not a name", pyproject: "[build-system]\nbuild-backend = \"os; import x\"\n", wantErr: `build-backend "os; import x" is not module:object`},
		{name: "invalid toml", pyproject: "[build-system\n", wantErr: "parse pyproject.toml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := t.TempDir()
			if err := os.Mkdir(filepath.Join(src, "tools"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(t.TempDir(), filepath.Join(src, "out")); err != nil {
				t.Fatal(err)
			}
			if tt.pyproject != "" {
				if err := os.WriteFile(filepath.Join(src, "pyproject.toml"), []byte(tt.pyproject), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			b, err := readBackend(src)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("readBackend(%q) = %v, want error containing %q", tt.pyproject, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("readBackend(%q) = %v, want success", tt.pyproject, err)
			}
			var want []string
			for _, p := range tt.wantPath {
				want = append(want, filepath.Join(src, p))
			}
			if b.Spec != tt.wantSpec || !slices.Equal(b.Path, want) {
				t.Errorf("readBackend(%q) = %q %q, want %q %q", tt.pyproject, b.Spec, b.Path, tt.wantSpec, want)
			}
		})
	}
}

func TestSdistIdentity(t *testing.T) {
	tests := []struct {
		top, pkgInfo      string // pkgInfo "" means none
		wantName, wantVer string
		wantErr           string
	}{
		{top: "x-1", pkgInfo: "Metadata-Version: 2.1\nName: Demo.Pkg\nVersion: 1.0.post1\n\nName: not-this\n", wantName: "Demo.Pkg", wantVer: "1.0.post1"},
		{top: "x-1", pkgInfo: "Metadata-Version: 2.1\nname: lower\nversion: 2\n", wantName: "lower", wantVer: "2"},
		{top: "demo-pkg-3.0", wantName: "demo-pkg", wantVer: "3.0"},
		{top: "x-1", pkgInfo: "Metadata-Version: 2.1\nName: noversion\n", wantErr: "PKG-INFO has no Name or Version field"},
		{top: "nodash", wantErr: `top directory "nodash" is not <name>-<version>`},
	}
	for _, tt := range tests {
		src := filepath.Join(t.TempDir(), tt.top)
		if err := os.Mkdir(src, 0o755); err != nil {
			t.Fatal(err)
		}
		if tt.pkgInfo != "" {
			if err := os.WriteFile(filepath.Join(src, "PKG-INFO"), []byte(tt.pkgInfo), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		name, ver, err := sdistIdentity(src)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("sdistIdentity(%q) = %v, want error containing %q", tt.top, err, tt.wantErr)
			}
			continue
		}
		if err != nil || name != tt.wantName || ver != tt.wantVer {
			t.Errorf("sdistIdentity(%q) = %q, %q, %v, want %q, %q", tt.top, name, ver, err, tt.wantName, tt.wantVer)
		}
	}
}
