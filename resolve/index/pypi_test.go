package index

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
)

// TestPyPI checks the client against the real index. It downloads a wheel of
// several megabytes when PyPI does not advertise PEP 658 metadata.
func TestPyPI(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the PyPI test in -short mode: it needs the network")
	}
	probe := &http.Client{Timeout: 10 * time.Second}
	resp, err := probe.Head(DefaultIndexURL)
	if err != nil {
		testenv.Skipf(t, "skipping: pypi.org is unreachable: %v", err)
	}
	resp.Body.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := New(Options{CacheDir: t.TempDir()})
	p, err := c.Project(ctx, "Django")
	if err != nil {
		t.Fatal(err)
	}
	const filename = "django-6.0.5-py3-none-any.whl"
	var whl *File
	for i := range p.Files {
		if p.Files[i].Filename == filename {
			whl = &p.Files[i]
		}
	}
	if whl == nil {
		t.Fatalf("Project(%q) has no %s among %d files", "Django", filename, len(p.Files))
	}
	if whl.Size == 0 || whl.UploadTime.IsZero() || whl.RequiresPython == "" {
		t.Errorf("%s = %+v, want size, upload time and requires-python set", filename, *whl)
	}
	m, err := c.Metadata(ctx, *whl)
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != "6.0.5" {
		t.Errorf("Metadata(%s).Version = %q, want %q", filename, m.Version, "6.0.5")
	}
	found := false
	for _, r := range m.RequiresDist {
		found = found || strings.HasPrefix(r, "asgiref")
	}
	if !found {
		t.Errorf("Metadata(%s).RequiresDist = %q, want an asgiref requirement", filename, m.RequiresDist)
	}
}
