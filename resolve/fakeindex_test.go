package resolve

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/internal/testarchive"
	"github.com/bitpoll-install/bitpoll-install/pyspec/pep508"
	"github.com/bitpoll-install/bitpoll-install/resolve/index"
)

// dist describes one release on the generated index.
type dist struct {
	name, version  string
	requires       []string // Requires-Dist lines
	extras         []string // Provides-Extra
	requiresPython string
	wheelTags      []string // "py3-none-any", "cp312-abi3-manylinux_2_17_x86_64", ...
	sdist          bool
	buildRequires  []string // pyproject [build-system].requires of the sdist; nil: setup.py only
	uploaded       time.Time
	yanked         bool
}

// fakeIndex serves dists as a PEP 691 index with PEP 658 metadata.
type fakeIndex struct {
	srv   *httptest.Server
	files map[string][]byte // path -> content

	mu       sync.Mutex
	requests map[string]int
}

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func newFakeIndex(t *testing.T, dists ...dist) *fakeIndex {
	t.Helper()
	fi := &fakeIndex{files: map[string][]byte{}, requests: map[string]int{}}
	pages := map[string][]map[string]any{}
	for _, d := range dists {
		norm := pep508.NormalizeName(d.name)
		under := strings.ReplaceAll(norm, "-", "_")
		up := d.uploaded
		if up.IsZero() {
			up = epoch
		}
		md := metadataFor(d)
		for _, tag := range d.wheelTags {
			fn := fmt.Sprintf("%s-%s-%s.whl", under, d.version, tag)
			content := []byte("wheel " + fn) // never downloaded while locking
			fi.files["/files/"+fn] = content
			fi.files["/files/"+fn+".metadata"] = md
			pages[norm] = append(pages[norm], fileEntry(fn, content, md, d, up))
		}
		if d.sdist {
			fn := fmt.Sprintf("%s-%s.tar.gz", under, d.version)
			content := sdistFor(t, under+"-"+d.version, d.buildRequires)
			fi.files["/files/"+fn] = content
			pages[norm] = append(pages[norm], fileEntry(fn, content, nil, d, up))
		}
	}
	for name, files := range pages {
		body, err := json.Marshal(map[string]any{"meta": map[string]any{"api-version": "1.1"}, "name": name, "files": files})
		if err != nil {
			t.Fatal(err)
		}
		fi.files["/simple/"+name+"/"] = body
	}
	fi.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fi.mu.Lock()
		fi.requests[r.URL.Path]++
		fi.mu.Unlock()
		body, ok := fi.files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/simple/") {
			w.Header().Set("Content-Type", "application/vnd.pypi.simple.v1+json")
		}
		w.Write(body)
	}))
	t.Cleanup(fi.srv.Close)
	return fi
}

func (fi *fakeIndex) client() *index.Client {
	return index.New(index.Options{IndexURL: fi.srv.URL + "/simple/", Retries: 1})
}

func fileEntry(fn string, content, md []byte, d dist, up time.Time) map[string]any {
	e := map[string]any{
		"filename":    fn,
		"url":         "../../files/" + fn,
		"hashes":      map[string]string{"sha256": sha(content)},
		"size":        len(content),
		"upload-time": up.Format(time.RFC3339Nano),
		"yanked":      d.yanked,
	}
	if d.requiresPython != "" {
		e["requires-python"] = d.requiresPython
	}
	if md != nil {
		e["core-metadata"] = map[string]string{"sha256": sha(md)}
	}
	return e
}

func metadataFor(d dist) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "Metadata-Version: 2.1\nName: %s\nVersion: %s\n", d.name, d.version)
	if d.requiresPython != "" {
		fmt.Fprintf(&b, "Requires-Python: %s\n", d.requiresPython)
	}
	for _, e := range d.extras {
		fmt.Fprintf(&b, "Provides-Extra: %s\n", e)
	}
	for _, r := range d.requires {
		fmt.Fprintf(&b, "Requires-Dist: %s\n", r)
	}
	b.WriteString("\nA description that mentions Requires-Dist: nothing\n")
	return []byte(b.String())
}

func sdistFor(t *testing.T, top string, buildRequires []string) []byte {
	t.Helper()
	ms := []testarchive.Member{{Name: top + "/PKG-INFO", Body: "Metadata-Version: 2.1\nName: x\nVersion: 0\n"}}
	if buildRequires != nil {
		quoted := make([]string, len(buildRequires))
		for i, r := range buildRequires {
			quoted[i] = fmt.Sprintf("%q", r)
		}
		ms = append(ms, testarchive.Member{Name: top + "/pyproject.toml", Body: "[build-system]\nrequires = [" + strings.Join(quoted, ", ") + "]\nbuild-backend = \"x\"\n"})
	} else {
		ms = append(ms, testarchive.Member{Name: top + "/setup.py", Body: "from setuptools import setup\nsetup()\n"})
	}
	return testarchive.TarGz(t, ms...)
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
