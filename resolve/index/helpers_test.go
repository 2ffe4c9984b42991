package index

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/internal/testarchive"
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

// member is one entry of a generated archive.
type member = testarchive.Member

// makeWheel builds a wheel whose dist-info holds metadata.
func makeWheel(t *testing.T, distInfo, metadata string) []byte {
	return testarchive.Zip(t,
		member{Name: strings.Split(distInfo, "-")[0] + "/__init__.py", Body: "x = 1\n"},
		member{Name: distInfo + ".dist-info/METADATA", Body: metadata},
		member{Name: distInfo + ".dist-info/WHEEL", Body: "Wheel-Version: 1.0\n"},
	)
}
