package index

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestProject(t *testing.T) {
	meta := []byte("Name: demo\nVersion: 1.0\n")
	fi := newFakeIndex(t, "demo",
		dist{filename: "demo-1.0-py3-none-any.whl", content: []byte("wheel"), metadata: meta,
			coreMetadata: map[string]string{"sha256": sha256Hex(meta)}},
		dist{filename: "demo-1.0.tar.gz", content: []byte("sdist"), yanked: "broken build"},
		dist{filename: "demo-0.9-py3-none-any.whl", content: []byte("old"), yanked: false, coreMetadata: true},
	)
	p, err := fi.client(Options{}).Project(context.Background(), "Demo")
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "demo" || len(p.Files) != 3 {
		t.Fatalf("Project(%q) = %q with %d files, want %q with 3", "Demo", p.Name, len(p.Files), "demo")
	}
	whl, sdist, old := p.Files[0], p.Files[1], p.Files[2]
	wantURL := fi.srv.URL + "/files/demo-1.0-py3-none-any.whl"
	if whl.URL != wantURL {
		t.Errorf("relative url resolved to %q, want %q (no fragment)", whl.URL, wantURL)
	}
	if whl.SHA256 != sha256Hex([]byte("wheel")) || whl.Size != 5 || whl.RequiresPython != ">=3.11" {
		t.Errorf("wheel = %+v, want sha256 of content, size 5, requires-python >=3.11", whl)
	}
	wantTime := time.Date(2025, 1, 2, 3, 4, 5, 123456000, time.UTC)
	if !whl.UploadTime.Equal(wantTime) {
		t.Errorf("upload time = %v, want %v", whl.UploadTime, wantTime)
	}
	if !whl.HasMetadata || whl.MetadataSHA256 != sha256Hex(meta) || whl.Yanked {
		t.Errorf("wheel metadata = %v %q yanked %v, want true, its hash, not yanked", whl.HasMetadata, whl.MetadataSHA256, whl.Yanked)
	}
	if !sdist.Yanked || sdist.HasMetadata {
		t.Errorf("sdist yanked = %v, has metadata = %v, want yanked (reason string) without metadata", sdist.Yanked, sdist.HasMetadata)
	}
	if old.Yanked || !old.HasMetadata || old.MetadataSHA256 != "" {
		t.Errorf("old wheel yanked = %v, metadata = %v %q, want not yanked, metadata without hash", old.Yanked, old.HasMetadata, old.MetadataSHA256)
	}
}

func TestParsePageErrors(t *testing.T) {
	const sha = `"hashes":{"sha256":"` + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + `"}`
	tests := []struct {
		name, page, wantErr string
	}{
		{"missing sha256", `{"meta":{"api-version":"1.0"},"name":"x","files":[{"filename":"x-1.tar.gz","url":"x-1.tar.gz","hashes":{"md5":"00"}}]}`, `file "x-1.tar.gz" has sha256 ""`},
		{"api version 2", `{"meta":{"api-version":"2.0"},"name":"x","files":[]}`, `unsupported api-version "2.0"`},
		{"filename with slash", `{"meta":{"api-version":"1.0"},"name":"x","files":[{"filename":"../x.whl","url":"x.whl",` + sha + `}]}`, `want a plain file name`},
		{"ftp url", `{"meta":{"api-version":"1.0"},"name":"x","files":[{"filename":"x-1.tar.gz","url":"ftp://h/x-1.tar.gz",` + sha + `}]}`, `want an http or https URL`},
		{"bad upload time", `{"meta":{"api-version":"1.0"},"name":"x","files":[{"filename":"x-1.tar.gz","url":"x-1.tar.gz","upload-time":"yesterday",` + sha + `}]}`, `upload-time "yesterday"`},
		{"bad yanked", `{"meta":{"api-version":"1.0"},"name":"x","files":[{"filename":"x-1.tar.gz","url":"x-1.tar.gz","yanked":3,` + sha + `}]}`, `yanked is 3`},
		{"bad core-metadata hash", `{"meta":{"api-version":"1.0"},"name":"x","files":[{"filename":"x-1.tar.gz","url":"x-1.tar.gz","core-metadata":{"sha256":"zz"},` + sha + `}]}`, `core-metadata sha256 is "zz"`},
		{"not json", `<html>`, `invalid character`},
	}
	for _, tt := range tests {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", mediaTypeJSON)
			w.Write([]byte(tt.page))
		}))
		_, err := testClient(srv, Options{}).Project(context.Background(), "x")
		srv.Close()
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: Project(%q) error = %v, want one containing %q", tt.name, "x", err, tt.wantErr)
		}
	}
}

func TestProjectWrongContentTypeOrName(t *testing.T) {
	tests := []struct{ typ, name, wantErr string }{
		{"text/html", "x", `answered with "text/html"`},
		{mediaTypeJSON, "other", `page is for project "other", want "x"`},
	}
	for _, tt := range tests {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", tt.typ)
			w.Write([]byte(`{"meta":{"api-version":"1.0"},"name":"` + tt.name + `","files":[]}`))
		}))
		_, err := testClient(srv, Options{}).Project(context.Background(), "x")
		srv.Close()
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Project(%q) with %s/%s: error = %v, want one containing %q", "x", tt.typ, tt.name, err, tt.wantErr)
		}
	}
}

func TestProjectInvalidName(t *testing.T) {
	c := New(Options{IndexURL: "http://127.0.0.1:1/simple/"})
	for _, name := range []string{"", "../etc", "a/b", "-x", "x?y"} {
		if _, err := c.Project(context.Background(), name); err == nil || !strings.Contains(err.Error(), "invalid project name") {
			t.Errorf("Project(%q) error = %v, want invalid project name", name, err)
		}
	}
}

func TestProjectNotFound(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.NotFound(w, r)
	}))
	defer srv.Close()
	_, err := testClient(srv, Options{}).Project(context.Background(), "nope")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Project(%q) error = %v, want ErrNotFound", "nope", err)
	}
	want := `no project "nope" on ` + srv.URL + `/simple/: check the name`
	if err.Error() != want {
		t.Errorf("Project(%q) error = %q, want %q", "nope", err, want)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("404 was requested %d times, want 1 (no retry)", n)
	}
}
