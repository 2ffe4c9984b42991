package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/fetch"
	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/safearchive"
	"github.com/bitpoll-install/bitpoll-install/treehash"
)

// fixtureBundle writes a bundle of the fixture app locked for the host's
// Python, with real wheels from PyPI, and returns its path and lock.
func fixtureBundle(t *testing.T) (string, *lockfile.Lock) {
	t.Helper()
	testkit.NeedNetwork(t)
	target := testkit.Target(testkit.HostPython(t))
	l := testkit.LockFixture(t, target, "gunicorn==27.0.1")
	out := filepath.Join(t.TempDir(), "fixture.bundle")
	m, err := Write(context.Background(), out, Options{Lock: l, App: install.App{Source: testkit.FixtureApp()}, CacheDir: t.TempDir(), CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) == 0 || m.Tree != l.App.Tree || len(m.Targets) != 1 || m.Targets[0] != target {
		t.Fatalf("manifest %+v: want the lock's files, tree %s and target %s", m, l.App.Tree, target)
	}
	return out, l
}

// TestRoundTrip opens a bundle into an empty cache: every file the lock
// pins for the target is in the cache with its hash, and the app tree
// hashes to the lock's.
func TestRoundTrip(t *testing.T) {
	path, l := fixtureBundle(t)
	cache := t.TempDir()
	u, err := Open(path, t.TempDir(), cache, safearchive.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if tree, err := treehash.GitTree(u.AppDir); err != nil || tree != l.App.Tree {
		t.Errorf("the app tree hashes to %s (%v), want the lock's %s", tree, err, l.App.Tree)
	}
	targets, err := l.ParsedTargets()
	if err != nil {
		t.Fatal(err)
	}
	files, err := l.Files(targets[0])
	if err != nil {
		t.Fatal(err)
	}
	d := &fetch.Downloader{CacheDir: cache}
	for _, f := range files {
		sum, size, err := treehash.FileSHA256(d.Path(f.File.SHA256))
		if err != nil || sum != f.File.SHA256 || size != f.File.Size {
			t.Errorf("%s in the cache: sha256 %s, %d bytes (%v); want %s, %d", f.File.Name, sum, size, err, f.File.SHA256, f.File.Size)
		}
	}
	// Offline, every file is at hand: Fetch makes no request.
	var arts []fetch.Artifact
	for _, f := range files {
		arts = append(arts, fetch.Artifact{Name: f.File.Name, URL: "https://unreachable.invalid/" + f.File.Name, Size: f.File.Size, SHA256: f.File.SHA256})
	}
	if _, err := (&fetch.Downloader{CacheDir: cache, Offline: true, Verify: true}).Fetch(context.Background(), arts); err != nil {
		t.Errorf("offline fetch after the bundle: %v", err)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(u.AppDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Close the scratch app tree is still there: %v", err)
	}
}

// rewrite copies the bundle at path member by member through edit, which
// may change a member's header and content or drop it (nil header).
func rewrite(t *testing.T, path string, edit func(h *tar.Header, data []byte) (*tar.Header, []byte)) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		h, data = edit(h, data)
		if h == nil {
			continue
		}
		h.Size = int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	tw.Close()
	out := filepath.Join(t.TempDir(), "edited.bundle")
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRefusals opens damaged and foreign bundles: each is refused with the
// member at fault named, and the cache gains nothing from any.
func TestRefusals(t *testing.T) {
	path, _ := fixtureBundle(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	firstFile := ""
	rewrite(t, path, func(h *tar.Header, d []byte) (*tar.Header, []byte) {
		if firstFile == "" && strings.HasPrefix(h.Name, filesPrefix) {
			firstFile = h.Name
		}
		return h, d
	})
	truncated := filepath.Join(t.TempDir(), "truncated.bundle")
	if err := os.WriteFile(truncated, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(t.TempDir(), "foreign.tar")
	{
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5})
		tw.Write([]byte("root\n"))
		tw.Close()
		os.WriteFile(foreign, buf.Bytes(), 0o644)
	}
	cases := []struct {
		name, path, want string
	}{
		{"a flipped byte in a wheel", rewrite(t, path, func(h *tar.Header, d []byte) (*tar.Header, []byte) {
			if h.Name == firstFile {
				d = bytes.Clone(d)
				d[len(d)/2] ^= 1
			}
			return h, d
		}), firstFile},
		{"a changed lock", rewrite(t, path, func(h *tar.Header, d []byte) (*tar.Header, []byte) {
			if h.Name == LockMember {
				d = append(bytes.Clone(d), "\n"...)
			}
			return h, d
		}), "bitpoll.lock hashes to"},
		{"a truncated bundle", truncated, "truncated.bundle"},
		{"no manifest", rewrite(t, path, func(h *tar.Header, d []byte) (*tar.Header, []byte) {
			if h.Name == ManifestMember {
				return nil, nil
			}
			return h, d
		}), "not bundle.json"},
		{"a file the lock does not pin", rewrite(t, path, func(h *tar.Header, d []byte) (*tar.Header, []byte) {
			if h.Name == firstFile {
				h.Name = filesPrefix + strings.Repeat("0", 64)
			}
			return h, d
		}), strings.Repeat("0", 64)},
		{"a member outside the layout", foreign, `"etc/passwd" has no place in a bundle`},
		{"a path that escapes", rewrite(t, path, func(h *tar.Header, d []byte) (*tar.Header, []byte) {
			if h.Name == firstFile {
				h.Name = "app/../../escaped"
			}
			return h, d
		}), "escaped"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cache := t.TempDir()
			tmp := t.TempDir()
			_, err := Open(c.path, tmp, cache, safearchive.Default())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Open = %v, want a refusal naming %q", err, c.want)
			}
			if des, _ := os.ReadDir(filepath.Join(cache, "wheels-v1")); len(des) > 0 {
				t.Errorf("the cache gained %d entries from a refused bundle", len(des))
			}
			if des, _ := os.ReadDir(tmp); len(des) > 0 {
				t.Errorf("the refused bundle left %d entries in the scratch directory", len(des))
			}
		})
	}
}

// TestWriteRefusesAnotherTree: an app source that is not the locked tree
// is refused, and no bundle file appears.
func TestWriteRefusesAnotherTree(t *testing.T) {
	testkit.NeedNetwork(t)
	target := testkit.Target(testkit.HostPython(t))
	l := testkit.LockFixture(t, target)
	out := filepath.Join(t.TempDir(), "x.bundle")
	other := testkit.FixtureVariant(t, true, testkit.AddNote)
	_, err := Write(context.Background(), out, Options{Lock: l, App: install.App{Source: other}, CacheDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "but the lock pins") {
		t.Fatalf("Write = %v, want the tree refused", err)
	}
	if des, _ := os.ReadDir(filepath.Dir(out)); len(des) > 0 {
		t.Errorf("a refused bundle left %v behind", des)
	}
}
