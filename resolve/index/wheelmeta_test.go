package index

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/httpretry"
	"github.com/bitpoll-install/bitpoll-install/internal/testarchive"
)

const demoMetadata = "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Dist: asgiref>=3\nRequires-Dist: sqlparse\n\nbody\n"

func project(t *testing.T, c *Client, name string) *Project {
	t.Helper()
	p, err := c.Project(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMetadataPEP658(t *testing.T) {
	meta := []byte(demoMetadata)
	fi := newFakeIndex(t, "demo", dist{
		filename: "demo-1.0-py3-none-any.whl", content: []byte("not a zip; must not be downloaded"),
		metadata: meta, coreMetadata: map[string]string{"sha256": sha256Hex(meta)},
	})
	cache := t.TempDir()
	for i := range 2 {
		c := fi.client(Options{CacheDir: cache})
		m, err := c.Metadata(context.Background(), project(t, c, "demo").Files[0])
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"asgiref>=3", "sqlparse"}; !reflect.DeepEqual(m.RequiresDist, want) {
			t.Errorf("run %d: Metadata().RequiresDist = %q, want %q", i, m.RequiresDist, want)
		}
	}
	if n := fi.count("/files/demo-1.0-py3-none-any.whl.metadata"); n != 1 {
		t.Errorf(".metadata fetched %d times with a cache, want 1", n)
	}
	if n := fi.count("/files/demo-1.0-py3-none-any.whl"); n != 0 {
		t.Errorf("wheel fetched %d times, want 0 when PEP 658 metadata exists", n)
	}
}

func TestMetadataHashMismatch(t *testing.T) {
	meta := []byte(demoMetadata)
	promised := sha256Hex([]byte("something else"))
	fi := newFakeIndex(t, "demo", dist{
		filename: "demo-1.0-py3-none-any.whl", content: []byte("wheel"),
		metadata: meta, coreMetadata: map[string]string{"sha256": promised},
	})
	c := fi.client(Options{CacheDir: t.TempDir()})
	_, err := c.Metadata(context.Background(), project(t, c, "demo").Files[0])
	var he *httpretry.HashError
	if !errors.As(err, &he) || he.Expected != promised || he.Actual != sha256Hex(meta) {
		t.Fatalf("Metadata error = %v, want a HashError expecting %s, got %s", err, promised, sha256Hex(meta))
	}
	if !strings.Contains(err.Error(), promised) || !strings.Contains(err.Error(), sha256Hex(meta)) {
		t.Errorf("error %q does not name both hashes", err)
	}
}

func TestMetadataFallbackToWheel(t *testing.T) {
	wheel := makeWheel(t, "Demo-1.0", demoMetadata)
	for _, core := range []any{nil, false, true} { // true: a metadata file without a hash cannot be verified
		fi := newFakeIndex(t, "demo", dist{filename: "demo-1.0-py3-none-any.whl", content: wheel, coreMetadata: core})
		cache := t.TempDir()
		for range 2 {
			c := fi.client(Options{CacheDir: cache})
			m, err := c.Metadata(context.Background(), project(t, c, "demo").Files[0])
			if err != nil {
				t.Fatalf("core-metadata %v: %v", core, err)
			}
			if m.Name != "demo" || m.Version != "1.0" || len(m.RequiresDist) != 2 {
				t.Errorf("core-metadata %v: Metadata() = %+v, want demo 1.0 with 2 requirements", core, m)
			}
		}
		if n := fi.count("/files/demo-1.0-py3-none-any.whl"); n != 1 {
			t.Errorf("core-metadata %v: wheel downloaded %d times with a cache, want 1", core, n)
		}
	}
}

func TestMetadataWheelErrors(t *testing.T) {
	good := makeWheel(t, "demo-1.0", demoMetadata)
	tests := []struct {
		name    string
		d       dist
		wantErr string
	}{
		{"wheel hash mismatch", dist{filename: "demo-1.0-py3-none-any.whl", content: good, sha256: sha256Hex([]byte("x"))}, "sha256 of demo-1.0-py3-none-any.whl is " + sha256Hex(good)},
		{"not a zip", dist{filename: "demo-1.0-py3-none-any.whl", content: []byte("garbage")}, "open wheel"},
		{"no METADATA", dist{filename: "demo-1.0-py3-none-any.whl", content: testarchive.Zip(t, member{Name: "demo/__init__.py"})}, "found 0 *.dist-info/METADATA"},
		{"two dist-infos", dist{filename: "demo-1.0-py3-none-any.whl", content: testarchive.Zip(t,
			member{Name: "a-1.dist-info/METADATA", Body: demoMetadata}, member{Name: "b-1.dist-info/METADATA", Body: demoMetadata})}, "found 2"},
		{"other project", dist{filename: "demo-1.0-py3-none-any.whl", content: makeWheel(t, "demo-1.0", "Name: evil\nVersion: 1.0\n")}, `names project "evil", want "demo"`},
		{"sdist without metadata", dist{filename: "demo-1.0.tar.gz", content: []byte("x")}, "not a wheel"},
	}
	for _, tt := range tests {
		fi := newFakeIndex(t, "demo", tt.d)
		c := fi.client(Options{})
		_, err := c.Metadata(context.Background(), project(t, c, "demo").Files[0])
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: Metadata error = %v, want one containing %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestMetadataListedButMissing(t *testing.T) {
	fi := newFakeIndex(t, "demo", dist{filename: "demo-1.0-py3-none-any.whl", content: []byte("w"),
		coreMetadata: map[string]string{"sha256": sha256Hex([]byte("m"))}}) // listed, never served
	c := fi.client(Options{})
	_, err := c.Metadata(context.Background(), project(t, c, "demo").Files[0])
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("Metadata error = %v, want ErrNotFound", err)
	}
}

func TestDownloadSizeChecks(t *testing.T) {
	fi := newFakeIndex(t, "demo", dist{filename: "demo-1.0-py3-none-any.whl", content: []byte("0123456789")})
	c := fi.client(Options{})
	f := project(t, c, "demo").Files[0]
	tests := []struct {
		size    int64
		limit   int64
		wantErr string
	}{
		{4, 100, "demo-1.0-py3-none-any.whl is larger than the expected 4 bytes"},
		{20, 100, "has 10 bytes, expected 20"},
		{0, 5, "larger than the 5-byte limit"},
		{200, 100, "size 200 is over the 100-byte limit"},
	}
	for _, tt := range tests {
		g := f
		g.Size = tt.size
		tmp, err := c.download(context.Background(), g, tt.limit)
		if err == nil {
			closeRemove(tmp)
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("download(size %d, limit %d) error = %v, want one containing %q", tt.size, tt.limit, err, tt.wantErr)
		}
	}
}

func TestMetadataUnadvertised(t *testing.T) {
	// The page says nothing about metadata, but <wheel>.metadata exists, as
	// with proxies that strip PEP 658 keys: it is used when it describes
	// the wheel, and the wheel is not downloaded.
	wheel := makeWheel(t, "demo-1.0", demoMetadata)
	fi := newFakeIndex(t, "demo", dist{filename: "demo-1.0-py3-none-any.whl", content: wheel, metadata: []byte(demoMetadata)})
	c := fi.client(Options{CacheDir: t.TempDir()})
	m, err := c.Metadata(context.Background(), project(t, c, "demo").Files[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(m.RequiresDist) != 2 {
		t.Errorf("Metadata().RequiresDist = %q, want 2 requirements", m.RequiresDist)
	}
	if n := fi.count("/files/demo-1.0-py3-none-any.whl"); n != 0 {
		t.Errorf("wheel downloaded %d times, want 0: the unadvertised metadata file was usable", n)
	}

	// One that describes another release is ignored in favour of the wheel.
	other := "Metadata-Version: 2.1\nName: demo\nVersion: 9.9\nRequires-Dist: evil\n"
	fi = newFakeIndex(t, "demo", dist{filename: "demo-1.0-py3-none-any.whl", content: wheel, metadata: []byte(other)})
	c = fi.client(Options{CacheDir: t.TempDir()})
	m, err = c.Metadata(context.Background(), project(t, c, "demo").Files[0])
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != "1.0" || len(m.RequiresDist) != 2 {
		t.Errorf("Metadata() = %+v, want the wheel's own METADATA (demo 1.0)", m)
	}
	if n := fi.count("/files/demo-1.0-py3-none-any.whl"); n != 1 {
		t.Errorf("wheel downloaded %d times, want 1 after a mismatched metadata file", n)
	}
}
