package index

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// dist is one file served by a fake index.
type dist struct {
	filename string
	content  []byte
	// metadata is served at <file>.metadata when non-nil; coreMetadata is
	// what the page says about it (nil: nothing).
	metadata     []byte
	coreMetadata any
	yanked       any
	sha256       string // overrides the content's hash on the page
}

// fakeIndex serves one project as a PEP 691 page with relative file URLs
// and counts requests per path.
type fakeIndex struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newFakeIndex(t *testing.T, project string, dists ...dist) *fakeIndex {
	t.Helper()
	fi := &fakeIndex{hits: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/simple/"+project+"/", func(w http.ResponseWriter, r *http.Request) {
		var files []map[string]any
		for _, d := range dists {
			sha := d.sha256
			if sha == "" {
				sha = sha256Hex(d.content)
			}
			f := map[string]any{
				"filename":        d.filename,
				"url":             "../../files/" + d.filename + "#sha256=" + sha,
				"hashes":          map[string]string{"sha256": sha},
				"requires-python": ">=3.11",
				"size":            len(d.content),
				"upload-time":     "2025-01-02T03:04:05.123456Z",
			}
			if d.coreMetadata != nil {
				f["core-metadata"] = d.coreMetadata
			}
			if d.yanked != nil {
				f["yanked"] = d.yanked
			}
			files = append(files, f)
		}
		w.Header().Set("Content-Type", mediaTypeJSON)
		json.NewEncoder(w).Encode(map[string]any{
			"meta": map[string]string{"api-version": "1.1"}, "name": project, "files": files,
		})
	})
	for _, d := range dists {
		mux.HandleFunc("/files/"+d.filename, func(w http.ResponseWriter, r *http.Request) {
			w.Write(d.content)
		})
		if d.metadata != nil {
			mux.HandleFunc("/files/"+d.filename+".metadata", func(w http.ResponseWriter, r *http.Request) {
				w.Write(d.metadata)
			})
		}
	}
	fi.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fi.mu.Lock()
		fi.hits[r.URL.Path]++
		fi.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(fi.srv.Close)
	return fi
}

func (fi *fakeIndex) client(o Options) *Client {
	o.IndexURL = fi.srv.URL + "/simple/"
	return newClient(o, time.Millisecond)
}

func (fi *fakeIndex) count(path string) int {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	return fi.hits[path]
}

// testClient is a client for srv with fast retries.
func testClient(srv *httptest.Server, o Options) *Client {
	o.IndexURL = srv.URL + "/simple/"
	o.JSONAPIURL = srv.URL + "/pypi/"
	return newClient(o, time.Millisecond)
}

type member struct {
	name, body string
	typ        byte   // tar type; 0 means a regular file
	link       string // target of a link
}

func makeZip(t *testing.T, members ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		w, err := zw.Create(m.name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(m.body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func makeTarGz(t *testing.T, members ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, m := range members {
		h := &tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.body)), Typeflag: tar.TypeReg}
		if m.typ != 0 {
			h.Typeflag, h.Linkname, h.Size = m.typ, m.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte(m.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	gz.Close()
	return buf.Bytes()
}

// makeWheel builds a wheel whose dist-info holds metadata.
func makeWheel(t *testing.T, distInfo, metadata string) []byte {
	return makeZip(t,
		member{name: strings.Split(distInfo, "-")[0] + "/__init__.py", body: "x = 1\n"},
		member{name: distInfo + ".dist-info/METADATA", body: metadata},
		member{name: distInfo + ".dist-info/WHEEL", body: "Wheel-Version: 1.0\n"},
	)
}
