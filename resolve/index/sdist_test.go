package index

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testarchive"
)

const pyproject = `[build-system]
requires = ["setuptools>=64", "wheel"]
build-backend = "setuptools.build_meta"
`

func TestSdistBuildRequires(t *testing.T) {
	legacy := []string{"setuptools>=40.8.0"}
	tests := []struct {
		name     string
		filename string
		content  func(t *testing.T) []byte
		want     []string
	}{
		{"tar.gz with pyproject", "demo-1.0.tar.gz", func(t *testing.T) []byte {
			return testarchive.TarGz(t, member{Name: "demo-1.0/setup.py"}, member{Name: "demo-1.0/pyproject.toml", Body: pyproject},
				member{Name: "demo-1.0/sub/pyproject.toml", Body: "[build-system]\nrequires = [\"nested\"]\n"})
		}, []string{"setuptools>=64", "wheel"}},
		{"zip with pyproject", "demo-1.0.zip", func(t *testing.T) []byte {
			return testarchive.Zip(t, member{Name: "demo-1.0/", Dir: true}, member{Name: "demo-1.0/pyproject.toml", Body: pyproject})
		}, []string{"setuptools>=64", "wheel"}},
		{"no pyproject", "demo-1.0.tar.gz", func(t *testing.T) []byte {
			return testarchive.TarGz(t, member{Name: "demo-1.0/setup.py", Body: "setup()"})
		}, legacy},
		{"pyproject without build-system", "demo-1.0.tar.gz", func(t *testing.T) []byte {
			return testarchive.TarGz(t, member{Name: "demo-1.0/pyproject.toml", Body: "[tool.black]\nline-length = 88\n"})
		}, legacy},
		{"empty requires", "demo-1.0.zip", func(t *testing.T) []byte {
			return testarchive.Zip(t, member{Name: "demo-1.0/pyproject.toml", Body: "[build-system]\nrequires = []\n"})
		}, []string{}},
		{"two tops, the named one wins", "demo-1.0.tar.gz", func(t *testing.T) []byte {
			return testarchive.TarGz(t, member{Name: "other/pyproject.toml", Body: "[build-system]\nrequires = [\"no\"]\n"},
				member{Name: "./demo-1.0/pyproject.toml", Body: pyproject})
		}, []string{"setuptools>=64", "wheel"}},
		{"relative symlink inside", "demo-1.0.tar.gz", func(t *testing.T) []byte {
			return testarchive.TarGz(t, member{Name: "demo-1.0/docs/link", Symlink: "../README"},
				member{Name: "demo-1.0/pyproject.toml", Body: pyproject})
		}, []string{"setuptools>=64", "wheel"}},
	}
	for _, tt := range tests {
		fi := newFakeIndex(t, "demo", dist{filename: tt.filename, content: tt.content(t)})
		c := fi.client(Options{})
		got, err := c.SdistBuildRequires(context.Background(), project(t, c, "demo").Files[0])
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: SdistBuildRequires(%q) = %q, %v, want %q", tt.name, tt.filename, got, err, tt.want)
		}
	}
}

func TestSdistBuildRequiresRefuses(t *testing.T) {
	tests := []struct {
		name     string
		filename string
		content  func(t *testing.T) []byte
		wantErr  string
	}{
		{"dot-dot in tar", "demo-1.0.tar.gz", func(t *testing.T) []byte {
			return testarchive.TarGz(t, member{Name: "demo-1.0/pyproject.toml", Body: pyproject}, member{Name: "demo-1.0/../../evil", Body: "x"})
		}, `member "demo-1.0/../../evil": unsafe archive: escapes the archive with ".."`},
		{"absolute in tar", "demo-1.0.tar.gz", func(t *testing.T) []byte {
			return testarchive.TarGz(t, member{Name: "/etc/cron.d/evil", Body: "x"})
		}, `member "/etc/cron.d/evil"`},
		{"dot-dot in zip", "demo-1.0.zip", func(t *testing.T) []byte {
			return testarchive.Zip(t, member{Name: "../evil", Body: "x"})
		}, `member "../evil"`},
		{"backslash in zip", "demo-1.0.zip", func(t *testing.T) []byte {
			return testarchive.Zip(t, member{Name: `demo-1.0\..\..\evil`, Body: "x"})
		}, `contains a backslash`},
		{"escaping symlink", "demo-1.0.tar.gz", func(t *testing.T) []byte {
			return testarchive.TarGz(t, member{Name: "demo-1.0/x", Symlink: "../../etc/passwd"})
		}, `member "demo-1.0/x": unsafe archive: links to "../../etc/passwd", outside the archive`},
		{"escaping hard link", "demo-1.0.tar.gz", func(t *testing.T) []byte {
			return testarchive.TarGz(t, member{Name: "demo-1.0/x", Hardlink: "/etc/shadow"})
		}, `member "demo-1.0/x": unsafe archive: is a hard link to "/etc/shadow"`},
		{"pyproject is a symlink", "demo-1.0.tar.gz", func(t *testing.T) []byte {
			return testarchive.TarGz(t, member{Name: "demo-1.0/pyproject.toml", Symlink: "other.toml"})
		}, "is a symbolic link, not a regular file"},
		{"build-system without requires", "demo-1.0.tar.gz", func(t *testing.T) []byte {
			return testarchive.TarGz(t, member{Name: "demo-1.0/pyproject.toml", Body: "[build-system]\nbuild-backend = \"x\"\n"})
		}, "has no requires key"},
		{"bad toml", "demo-1.0.tar.gz", func(t *testing.T) []byte {
			return testarchive.TarGz(t, member{Name: "demo-1.0/pyproject.toml", Body: "[build-system\n"})
		}, "pyproject.toml:"},
		{"unknown archive", "demo-1.0.rar", func(t *testing.T) []byte { return []byte("x") }, "unknown archive type"},
		{"not gzip", "demo-1.0.tar.gz", func(t *testing.T) []byte { return []byte("plain") }, "read sdist demo-1.0.tar.gz"},
	}
	for _, tt := range tests {
		fi := newFakeIndex(t, "demo", dist{filename: tt.filename, content: tt.content(t)})
		c := fi.client(Options{})
		got, err := c.SdistBuildRequires(context.Background(), project(t, c, "demo").Files[0])
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: SdistBuildRequires(%q) = %q, %v, want error containing %q", tt.name, tt.filename, got, err, tt.wantErr)
		}
	}
}
