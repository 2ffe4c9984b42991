package standalone

import (
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/pyspec/wheeltag"
)

// downloadsJSON is a download list in uv's format, with the kinds of
// entry it holds besides the default linux-gnu builds.
const downloadsJSON = `{
  "cpython-3.13.5-linux-x86_64-gnu": {"name": "cpython", "arch": {"family": "x86_64", "variant": null}, "os": "linux", "libc": "gnu",
    "major": 3, "minor": 13, "patch": 5, "prerelease": "", "url": "https://example.org/download/20250723/cpython-3.13.5%2B20250723-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz",
    "sha256": "1111111111111111111111111111111111111111111111111111111111111111", "variant": null, "build": "20250723"},
  "cpython-3.13.4-linux-x86_64-gnu": {"name": "cpython", "arch": {"family": "x86_64", "variant": null}, "os": "linux", "libc": "gnu",
    "major": 3, "minor": 13, "patch": 4, "prerelease": "", "url": "https://example.org/download/20250612/cpython-3.13.4.tar.gz",
    "sha256": "2222222222222222222222222222222222222222222222222222222222222222", "variant": null, "build": "20250612"},
  "cpython-3.13.6rc1-linux-x86_64-gnu": {"name": "cpython", "arch": {"family": "x86_64", "variant": null}, "os": "linux", "libc": "gnu",
    "major": 3, "minor": 13, "patch": 6, "prerelease": "rc1", "url": "https://example.org/rc.tar.gz", "sha256": null, "variant": null, "build": "20250801"},
  "cpython-3.13.5+freethreaded-linux-x86_64-gnu": {"name": "cpython", "arch": {"family": "x86_64", "variant": null}, "os": "linux", "libc": "gnu",
    "major": 3, "minor": 13, "patch": 5, "prerelease": "", "url": "https://example.org/ft.tar.gz", "sha256": null, "variant": "freethreaded", "build": "20250723"},
  "cpython-3.13.5-linux-x86_64_v3-gnu": {"name": "cpython", "arch": {"family": "x86_64", "variant": "v3"}, "os": "linux", "libc": "gnu",
    "major": 3, "minor": 13, "patch": 5, "prerelease": "", "url": "https://example.org/v3.tar.gz", "sha256": null, "variant": null, "build": "20250723"},
  "cpython-3.13.5-linux-x86_64-musl": {"name": "cpython", "arch": {"family": "x86_64", "variant": null}, "os": "linux", "libc": "musl",
    "major": 3, "minor": 13, "patch": 5, "prerelease": "", "url": "https://example.org/musl.tar.gz", "sha256": null, "variant": null, "build": "20250723"},
  "cpython-3.11.13-linux-x86_64-gnu": {"name": "cpython", "arch": {"family": "x86_64", "variant": null}, "os": "linux", "libc": "gnu",
    "major": 3, "minor": 11, "patch": 13, "prerelease": "", "url": "file:///srv/python/download/local-1/cpython-3.11.13.tar.gz",
    "sha256": "3333333333333333333333333333333333333333333333333333333333333333", "variant": null, "glibc": "2.36"},
  "pypy-3.11.13-linux-x86_64-gnu": {"name": "pypy", "arch": {"family": "x86_64", "variant": null}, "os": "linux", "libc": "gnu",
    "major": 3, "minor": 11, "patch": 13, "prerelease": "", "url": "https://example.org/pypy.tar.bz2", "sha256": null, "variant": null},
  "cpython-3.13.5-darwin-aarch64-none": {"name": "cpython", "arch": {"family": "aarch64", "variant": null}, "os": "darwin", "libc": "none",
    "major": 3, "minor": 13, "patch": 5, "prerelease": "", "url": "https://example.org/mac.tar.gz", "sha256": null, "variant": null}
}`

func target(t *testing.T, s string) wheeltag.Target {
	t.Helper()
	tg, err := wheeltag.ParseTarget(s, wheeltag.Glibc{Major: 2, Minor: 28})
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// TestParseDownloads: of uv's list only the default CPython release
// builds for linux-gnu are read; for a target the newest is picked; the
// release comes from "build", else from the URL; "glibc" may raise the
// floor.
func TestParseDownloads(t *testing.T) {
	ds, err := ParseDownloads([]byte(downloadsJSON), "downloads.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3 {
		t.Fatalf("ParseDownloads read %d builds, want 3 (3.13.5, 3.13.4, 3.11.13): %+v", len(ds), ds)
	}
	d, ok := Pick(ds, target(t, "cp313-x86_64"))
	if !ok || d.Version != "3.13.5" || d.Release != "20250723" || d.Glibc != DefaultGlibc || !strings.HasSuffix(d.URL, "x86_64-unknown-linux-gnu-install_only_stripped.tar.gz") {
		t.Errorf("Pick(cp313-x86_64) = %+v, %v; want 3.13.5 of 20250723 with glibc %s", d, ok, DefaultGlibc)
	}
	d, ok = Pick(ds, target(t, "cp311-x86_64"))
	if !ok || d.Release != "local-1" || d.Glibc != "2.36" {
		t.Errorf("Pick(cp311-x86_64) = %+v, %v; want release local-1 (from the URL) and glibc 2.36", d, ok)
	}
	if _, ok := Pick(ds, target(t, "cp313-aarch64")); ok {
		t.Errorf("Pick(cp313-aarch64) found a build; the list has only macOS builds for aarch64")
	}
	_, err = Entries(ds, []wheeltag.Target{target(t, "cp313-x86_64"), target(t, "cp312-aarch64")})
	if err == nil || !strings.Contains(err.Error(), "no standalone CPython build for cp312-aarch64") || !strings.Contains(err.Error(), "cp311-x86_64, cp313-x86_64") {
		t.Errorf("Entries(with cp312-aarch64) = %v, want an error naming the missing target and what the list has", err)
	}

	bad := strings.Replace(downloadsJSON, `"sha256": "1111111111111111111111111111111111111111111111111111111111111111"`, `"sha256": null`, 1)
	if _, err := ParseDownloads([]byte(bad), "downloads.json"); err == nil || !strings.Contains(err.Error(), `downloads.json: "cpython-3.13.5-linux-x86_64-gnu": sha256 is missing`) {
		t.Errorf("ParseDownloads(entry without sha256) = %v, want an error naming the file and entry", err)
	}
	if _, err := ParseDownloads([]byte(`[1, 2]`), "downloads.json"); err == nil || !strings.Contains(err.Error(), "read downloads.json") {
		t.Errorf("ParseDownloads(not an object) = %v, want an error naming the file", err)
	}
}

// TestBuiltin: the built-in facts cover the lock's default targets, and
// the entries they make pass the lock's own check.
func TestBuiltin(t *testing.T) {
	var targets []wheeltag.Target
	var names []string
	for _, s := range []string{"cp312-x86_64", "cp312-aarch64", "cp313-x86_64", "cp313-aarch64", "cp314-x86_64", "cp314-aarch64"} {
		targets = append(targets, target(t, s))
		names = append(names, s)
	}
	es, err := Entries(Builtin, targets)
	if err != nil {
		t.Fatal(err)
	}
	l := &lockfile.Lock{
		LockVersion: lockfile.Version, CreatedBy: "test", RequiresPython: ">=3.12,<3.15", Glibc: "2.28", Targets: names,
		App:          lockfile.App{Name: "bitpoll", Version: "0.11.0", URL: "https://github.com/fsinfuhh/Bitpoll", Tree: strings.Repeat("a", 40), Requirements: "requirements.txt"},
		Interpreters: es,
	}
	if err := l.Check(); err != nil {
		t.Fatalf("a lock of the built-in entries does not pass its check: %v", err)
	}
	for _, e := range es {
		if e.Size != 0 {
			t.Errorf("%s: size %d, want 0 (unknown: nothing was downloaded)", e.Target, e.Size)
		}
		arch := strings.SplitN(e.Target, "-", 2)[1]
		if !strings.Contains(e.URL, "/download/"+BuiltinRelease+"/cpython-"+e.Version+"%2B"+BuiltinRelease+"-"+arch+"-unknown-linux-gnu-install_only_stripped.tar.gz") {
			t.Errorf("%s: URL %s does not name its version, release and architecture", e.Target, e.URL)
		}
	}
}
