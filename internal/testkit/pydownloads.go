package testkit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
)

// EnvStandalonePython names the CPython archive that
// scripts/standalone-python.sh builds in the Debian 12 tree: the layout
// of python-build-standalone's install_only_stripped archives, which the
// tests cannot download (GitHub is out of reach).
const EnvStandalonePython = "BITPOLL_STANDALONE_PYTHON"

// hostBundle is the host's CA bundle, which reaches PyPI through any
// proxy the host trusts.
const hostBundle = "/etc/ssl/certs/ca-certificates.crt"

// PythonArchive is the archive named by $BITPOLL_STANDALONE_PYTHON.
type PythonArchive struct {
	Path    string // the .tar.gz, whose one top directory is python/
	Version string // CPython's version, "3.13.5"
	Glibc   string // the newest glibc symbol version it needs, "2.34"
	SHA256  string // hex
	Size    int64
}

// Minor is the archive's major.minor version, "3.13".
func (a PythonArchive) Minor() string {
	parts := strings.SplitN(a.Version, ".", 3)
	return parts[0] + "." + parts[1]
}

var (
	archiveName = regexp.MustCompile(`^cpython-(3\.\d+\.\d+)-x86_64-unknown-linux-gnu-install_only_stripped\.tar\.gz$`)
	newestGlibc = regexp.MustCompile(`(?m)^newest glibc symbol: GLIBC_(\d+\.\d+)$`)
)

// BuiltPython is the archive named by $BITPOLL_STANDALONE_PYTHON,
// read and hashed, or a skip (a failure with CI=true) when it is missing.
// The script writes BUILDINFO beside it, which gives the glibc it needs.
func BuiltPython(tb testing.TB) PythonArchive {
	tb.Helper()
	path := os.Getenv(EnvStandalonePython)
	if path == "" {
		testenv.Skipf(tb, "%s is not set: build the archive with scripts/standalone-python.sh (as root; it needs the Debian 12 tree) and point %s at the path it prints", EnvStandalonePython, EnvStandalonePython)
	}
	m := archiveName.FindStringSubmatch(filepath.Base(path))
	if m == nil {
		tb.Fatalf("%s=%s: want a file named cpython-3.X.Y-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz, as scripts/standalone-python.sh writes", EnvStandalonePython, path)
	}
	info, err := os.ReadFile(filepath.Join(filepath.Dir(path), "BUILDINFO"))
	if err != nil {
		testenv.Skipf(tb, "%s=%s is not a finished build (%v): rerun scripts/standalone-python.sh", EnvStandalonePython, path, err)
	}
	g := newestGlibc.FindSubmatch(info)
	if g == nil {
		tb.Fatalf("%s: no \"newest glibc symbol: GLIBC_X.Y\" line:\n%s", filepath.Join(filepath.Dir(path), "BUILDINFO"), info)
	}
	f, err := os.Open(path)
	if err != nil {
		testenv.Skipf(tb, "%s=%s: %v: rerun scripts/standalone-python.sh", EnvStandalonePython, path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		tb.Fatalf("hash %s: %v", path, err)
	}
	return PythonArchive{Path: path, Version: m[1], Glibc: string(g[1]), SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}
}

// TLSServer is an https server on loopback whose certificate is signed
// by a CA made for it alone.
type TLSServer struct {
	URL    string // https://127.0.0.1:PORT
	CAFile string // that CA, PEM
	// Bundle is the host's CA bundle followed by the CA: SSL_CERT_FILE
	// for a client that reaches both this server and PyPI.
	Bundle string
}

// NewTLSServer starts h on a TLS listener on 127.0.0.1 until tb ends.
// Unlike httptest's own certificate, which is its own CA, the server's
// is a leaf signed by a separate CA, as clients built on rustls (uv)
// require.
func NewTLSServer(tb testing.TB, h http.Handler) *TLSServer {
	tb.Helper()
	dir := tb.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "bitpoll-install test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		tb.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	s := &TLSServer{CAFile: filepath.Join(dir, "ca.pem"), Bundle: filepath.Join(dir, "bundle.pem")}
	if err := os.WriteFile(s.CAFile, caPEM, 0o644); err != nil {
		tb.Fatal(err)
	}
	host, err := os.ReadFile(hostBundle)
	if err != nil {
		tb.Fatalf("read the host's CA bundle: %v", err)
	}
	if err := os.WriteFile(s.Bundle, append(append(host, '\n'), caPEM...), 0o644); err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: key}}}
	srv.StartTLS()
	tb.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// TestRelease is the release tag the test archive is served under: no
// python-build-standalone release has it, so a lock that names it says
// plainly that its interpreter is not an upstream archive.
const TestRelease = "20990101"

// PythonDownloads serves a standalone archive the way
// python-build-standalone's releases do, and uv's download metadata
// (the format UV_PYTHON_DOWNLOADS_JSON_URL names) that lists it.
type PythonDownloads struct {
	*TLSServer
	Archive    PythonArchive
	JSONURL    string // the metadata
	ArchiveURL string // the archive, as the metadata gives it
	mux        *http.ServeMux
	requests   atomic.Int64
}

// ServePythonDownloads serves a over https on loopback until tb ends.
// The metadata's one entry carries "glibc", a key uv ignores and
// `lock --python-downloads-json` reads.
func ServePythonDownloads(tb testing.TB, a PythonArchive) *PythonDownloads {
	tb.Helper()
	d := &PythonDownloads{Archive: a, mux: http.NewServeMux()}
	name := "cpython-" + a.Version + "+" + TestRelease + "-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz"
	archivePath := "/releases/download/" + TestRelease + "/" + name
	var meta []byte
	mux := d.mux
	mux.HandleFunc("GET /download-metadata.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(meta)
	})
	mux.HandleFunc("GET "+archivePath, func(w http.ResponseWriter, r *http.Request) {
		d.requests.Add(1)
		http.ServeFile(w, r, a.Path)
	})
	d.TLSServer = NewTLSServer(tb, mux)
	d.JSONURL = d.URL + "/download-metadata.json"
	d.ArchiveURL = d.URL + strings.Replace(archivePath, "+", "%2B", 1)
	v := strings.Split(a.Version, ".")
	minor, _ := strconv.Atoi(v[1])
	patch, _ := strconv.Atoi(v[2])
	entry := map[string]any{
		"name": "cpython", "arch": map[string]any{"family": "x86_64", "variant": nil},
		"os": "linux", "libc": "gnu", "major": 3, "minor": minor, "patch": patch, "prerelease": "",
		"url": d.ArchiveURL, "sha256": a.SHA256, "variant": nil, "build": TestRelease, "glibc": a.Glibc,
	}
	var err error
	meta, err = json.MarshalIndent(map[string]any{fmt.Sprintf("cpython-%s-linux-x86_64-gnu", a.Version): entry}, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// ArchiveRequests is how many times the archive was asked for.
func (d *PythonDownloads) ArchiveRequests() int64 { return d.requests.Load() }

// ServeFiles serves dir under /files/ on d's server too, and returns
// that URL: the same server for the interpreter and the wheels.
func (d *PythonDownloads) ServeFiles(dir string) string {
	d.mux.Handle("GET /files/", http.StripPrefix("/files/", http.FileServer(http.Dir(dir))))
	return d.URL + "/files"
}
