package index

import (
	"archive/tar"
	"context"
	"reflect"
	"strings"
	"testing"
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
			return makeTarGz(t, member{name: "demo-1.0/setup.py"}, member{name: "demo-1.0/pyproject.toml", body: pyproject},
				member{name: "demo-1.0/sub/pyproject.toml", body: "[build-system]\nrequires = [\"nested\"]\n"})
		}, []string{"setuptools>=64", "wheel"}},
		{"zip with pyproject", "demo-1.0.zip", func(t *testing.T) []byte {
			return makeZip(t, member{name: "demo-1.0/"}, member{name: "demo-1.0/pyproject.toml", body: pyproject})
		}, []string{"setuptools>=64", "wheel"}},
		{"no pyproject", "demo-1.0.tar.gz", func(t *testing.T) []byte {
			return makeTarGz(t, member{name: "demo-1.0/setup.py", body: "setup()"})
		}, legacy},
		{"pyproject without build-system", "demo-1.0.tar.gz", func(t *testing.T) []byte {
			return makeTarGz(t, member{name: "demo-1.0/pyproject.toml", body: "[tool.black]\nline-length = 88\n"})
		}, legacy},
		{"empty requires", "demo-1.0.zip", func(t *testing.T) []byte {
			return makeZip(t, member{name: "demo-1.0/pyproject.toml", body: "[build-system]\nrequires = []\n"})
		}, []string{}},
		{"two tops, the named one wins", "demo-1.0.tar.gz", func(t *testing.T) []byte {
			return makeTarGz(t, member{name: "other/pyproject.toml", body: "[build-system]\nrequires = [\"no\"]\n"},
				member{name: "./demo-1.0/pyproject.toml", body: pyproject})
		}, []string{"setuptools>=64", "wheel"}},
		{"relative symlink inside", "demo-1.0.tar.gz", func(t *testing.T) []byte {
			return makeTarGz(t, member{name: "demo-1.0/docs/link", typ: tar.TypeSymlink, link: "../README"},
				member{name: "demo-1.0/pyproject.toml", body: pyproject})
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
			return makeTarGz(t, member{name: "demo-1.0/pyproject.toml", body: pyproject}, member{name: "demo-1.0/../../evil", body: "x"})
		}, `member "demo-1.0/../../evil": unsafe archive: escapes the archive with ".."`},
		{"absolute in tar", "demo-1.0.tar.gz", func(t *testing.T) []byte {
			return makeTarGz(t, member{name: "/etc/cron.d/evil", body: "x"})
		}, `member "/etc/cron.d/evil"`},
		{"dot-dot in zip", "demo-1.0.zip", func(t *testing.T) []byte {
			return makeZip(t, member{name: "../evil", body: "x"})
		}, `member "../evil"`},
		{"backslash in zip", "demo-1.0.zip", func(t *testing.T) []byte {
			return makeZip(t, member{name: `demo-1.0\..\..\evil`, body: "x"})
		}, `contains a backslash`},
		{"escaping symlink", "demo-1.0.tar.gz", func(t *testing.T) []byte {
			return makeTarGz(t, member{name: "demo-1.0/x", typ: tar.TypeSymlink, link: "../../etc/passwd"})
		}, `member "demo-1.0/x": unsafe archive: links to "../../etc/passwd", outside the archive`},
		{"escaping hard link", "demo-1.0.tar.gz", func(t *testing.T) []byte {
			return makeTarGz(t, member{name: "demo-1.0/x", typ: tar.TypeLink, link: "/etc/shadow"})
		}, `member "demo-1.0/x": unsafe archive: is a hard link to "/etc/shadow"`},
		{"pyproject is a symlink", "demo-1.0.tar.gz", func(t *testing.T) []byte {
			return makeTarGz(t, member{name: "demo-1.0/pyproject.toml", typ: tar.TypeSymlink, link: "other.toml"})
		}, "is a symbolic link, not a regular file"},
		{"build-system without requires", "demo-1.0.tar.gz", func(t *testing.T) []byte {
			return makeTarGz(t, member{name: "demo-1.0/pyproject.toml", body: "[build-system]\nbuild-backend = \"x\"\n"})
		}, "has no requires key"},
		{"bad toml", "demo-1.0.tar.gz", func(t *testing.T) []byte {
			return makeTarGz(t, member{name: "demo-1.0/pyproject.toml", body: "[build-system\n"})
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
