package install

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/pyspec/pep508"
	"github.com/bitpoll-install/bitpoll-install/resolve"
)

// BenchmarkInstallStandalone is a cold install on a machine without a
// fitting Python: bitpoll-install fetches the interpreter its lock pins
// and builds the venv on it (--python standalone), and uv, in the same
// run, does `uv python install` of the same archive, `uv venv` on it and
// `uv pip install` of the same pins. Both fetch everything from one
// https server on loopback: the archive of scripts/standalone-python.sh
// ($BITPOLL_STANDALONE_PYTHON), listed in uv's download metadata
// (UV_PYTHON_DOWNLOADS_JSON_URL, which `lock --python-downloads-json`
// reads too), and the lock's wheels, downloaded from PyPI beforehand and
// served under the URLs the lock is rewritten to (its hashes unchanged).
// Neither side keeps a cache between runs.
//
// Metrics besides ns/op: peak-MB as in BenchmarkInstall; venv-ms is the
// time until bitpoll-install's venv is complete with bytecode (the job
// uv is timed for; collectstatic, compilemessages and the store's seal
// follow), and python-ms the time until the interpreter is installed
// (for bitpoll-install: fetched, unpacked, its standard library compiled
// and sealed in the store; for uv: `uv python install`).
func BenchmarkInstallStandalone(b *testing.B) {
	benchStandalone(b, testkit.FixtureApp(), "1.0.0", fixtureExtras(b))
}

// BenchmarkInstallStandaloneBitpoll is BenchmarkInstallStandalone on real
// Bitpoll 0.11.0, where BITPOLL_MIRROR names a mirror of its repository.
func BenchmarkInstallStandaloneBitpoll(b *testing.B) {
	mirror := testkit.BitpollMirror(b)
	benchStandalone(b, testkit.ExportRelease(context.Background(), b, mirror, "0.11.0"), "0.11.0", resolve.DefaultExtra)
}

// fixtureExtras is resolve.DefaultExtra less what the fixture app pins
// itself, as benchLock has it.
func fixtureExtras(b *testing.B) []string {
	reqs, err := resolve.ReadRequirements(testkit.FixtureApp(), "requirements.txt")
	if err != nil {
		b.Fatal(err)
	}
	var extra []string
	for _, s := range resolve.DefaultExtra {
		r, err := pep508.ParseRequirement(s)
		if err != nil {
			b.Fatal(err)
		}
		if !slices.ContainsFunc(reqs, func(q resolve.Requirement) bool { return q.Name == r.Name }) {
			extra = append(extra, s)
		}
	}
	return extra
}

func benchStandalone(b *testing.B, app, version string, extra []string) {
	archive := testkit.BuiltPython(b)
	dl := testkit.ServePythonDownloads(b, archive)
	e := newStandaloneEnv(b, dl, app, version, extra)
	b.Setenv("SSL_CERT_FILE", dl.Bundle)
	b.Setenv("UV_PYTHON_DOWNLOADS_JSON_URL", dl.JSONURL)

	b.Run("bitpoll-install/cold", func(b *testing.B) {
		var peak, phase, python float64
		for i := 0; i < b.N; i++ {
			root := e.scratch(b)
			var venv, interp time.Time
			start := time.Now()
			r := e.run(b, func(line string) {
				switch {
				case strings.HasPrefix(line, "installed CPython"):
					interp = time.Now()
				case strings.HasPrefix(line, "the venv is complete"):
					venv = time.Now()
				}
			}, e.cli, "--root", root, "install", "--lock", e.lock, "--app-source", e.appSource, "--python", "standalone")
			if venv.IsZero() || interp.IsZero() {
				b.Fatal(`bitpoll-install printed no "installed CPython ..." or no "the venv is complete ..." line: its phases cannot be timed`)
			}
			peak, phase = max(peak, r.peakMB), phase+float64(venv.Sub(start).Microseconds())/1000
			python += float64(interp.Sub(start).Microseconds()) / 1000
		}
		b.ReportMetric(peak, "peak-MB")
		b.ReportMetric(phase/float64(b.N), "venv-ms/op")
		b.ReportMetric(python/float64(b.N), "python-ms/op")
	})

	b.Run("uv/cold", func(b *testing.B) {
		e.needUV(b)
		var peak, phase float64
		for i := 0; i < b.N; i++ {
			dir := e.scratch(b)
			pythons := filepath.Join(dir, "python")
			start := time.Now()
			peak = max(peak, e.run(b, nil, "uv", "python", "install", "--quiet", "--no-cache", "--no-bin",
				"--install-dir", pythons, archive.Version).peakMB)
			phase += float64(time.Since(start).Microseconds()) / 1000
			found, _ := filepath.Glob(filepath.Join(pythons, "cpython-"+archive.Version+"-*", "bin", "python"+archive.Minor()))
			if len(found) != 1 {
				b.Fatalf("uv python install left %q in %s, want one cpython-%s-*/bin/python%s", found, pythons, archive.Version, archive.Minor())
			}
			venv := filepath.Join(dir, "venv")
			peak = max(peak, e.run(b, nil, "uv", "venv", "--quiet", "--no-cache", "--python", found[0], venv).peakMB)
			peak = max(peak, e.run(b, nil, "uv", "pip", "install", "--quiet", "--no-cache", "--require-hashes", "--compile-bytecode",
				"--python", filepath.Join(venv, "bin", "python"), "-r", e.requirements).peakMB)
		}
		b.ReportMetric(peak, "peak-MB")
		b.ReportMetric(phase/float64(b.N), "python-ms/op")
	})
}

// newStandaloneEnv builds the CLI, locks app with an interpreter entry
// from dl's metadata (`lock --python-downloads-json`, which downloads the
// archive once and checks its hash), downloads every file the lock names
// from PyPI, serves them from dl's server and rewrites the lock's URLs to
// it. The requirements file names the same files by the same URLs.
func newStandaloneEnv(b *testing.B, dl *testkit.PythonDownloads, app, version string, extra []string) *benchEnv {
	testkit.NeedNetwork(b)
	goTool, err := exec.LookPath("go")
	if err != nil {
		testenv.Skip(b, "the go command is not on PATH: it builds the CLI the benchmark runs")
	}
	e := &benchEnv{python: testkit.HostPython(b), tmp: b.TempDir(), appSource: app}
	b.Cleanup(func() { makeWritable(e.tmp) })
	e.cli = filepath.Join(e.tmp, "bitpoll-install")
	if out, err := exec.Command(goTool, "build", "-o", e.cli, "github.com/bitpoll-install/bitpoll-install/cmd/bitpoll-install").CombinedOutput(); err != nil {
		b.Fatalf("build the CLI: %v\n%s", err, out)
	}

	target := "cp" + strings.ReplaceAll(dl.Archive.Minor(), ".", "") + "-x86_64"
	e.lock = filepath.Join(e.tmp, "bitpoll.lock")
	args := []string{"--root", e.scratch(b), "lock", "--app-source", app, "--app-version", version, "--target", target,
		"--exclude-newer", testkit.ExcludeNewer.Format(time.RFC3339), "--python-standalone", "--python-downloads-json", dl.JSONURL, "-o", e.lock}
	for _, x := range extra {
		args = append(args, "--extra", x)
	}
	cmd := exec.Command(e.cli, args...)
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+dl.Bundle)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("lock --python-downloads-json: %v\n%s", err, out)
	}

	l, err := lockfile.ReadFile(e.lock)
	if err != nil {
		b.Fatal(err)
	}
	files := filepath.Join(e.tmp, "files")
	base := dl.ServeFiles(files)
	local := func(f *lockfile.File) {
		dst := filepath.Join(files, f.SHA256, f.Name)
		if err := downloadChecked(f.URL, dst, f.SHA256); err != nil {
			b.Fatal(err)
		}
		f.URL = base + "/" + f.SHA256 + "/" + f.Name
	}
	for i := range l.Packages {
		p := &l.Packages[i]
		if p.Sdist != nil {
			local(p.Sdist)
		}
		for j := range p.Wheels {
			local(&p.Wheels[j])
		}
	}
	if err := lockfile.WriteFile(e.lock, l); err != nil {
		b.Fatal(err)
	}
	e.requirements = writeRequirements(b, e.tmp, l, func(s lockfile.Selected) string {
		return s.Package.Name + " @ " + s.File.URL + " --hash=sha256:" + s.File.SHA256
	})
	return e
}

// downloadChecked downloads url to dst and checks its sha256.
func downloadChecked(url, dst, sha string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	resp, err := http.Get(url)
	if err != nil {
		return fmt.Errorf("download %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download %s: %s", url, resp.Status)
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("download %s: %w", url, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha {
		return fmt.Errorf("download %s: sha256 %s, want %s", url, got, sha)
	}
	return nil
}
