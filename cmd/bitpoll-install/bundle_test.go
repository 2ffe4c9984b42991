package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
)

// TestInstallFromBundle writes a bundle of the fixture app with one root's
// cache, then installs it into another root whose cache is empty: the
// build takes every file from the bundle (offline, it could fetch none),
// and generation 1 serves the locked tree. --from-bundle with --lock is a
// usage error.
func TestInstallFromBundle(t *testing.T) {
	e := newGenEnv(t)
	flags := e.version(testkit.FixtureApp(), "1.0.0")
	bundle := filepath.Join(t.TempDir(), "fixture.bundle")
	r := runCLI(t, append([]string{"--root", t.TempDir(), "bundle", "-o", bundle}, flags[:4]...)...)
	if r.code != exitOK || !strings.Contains(r.stdout, "wrote "+bundle) {
		t.Fatalf("bundle: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if fi, err := os.Stat(bundle); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("the bundle: %v", err)
	}
	r = e.must("install", "--from-bundle", bundle, "--python", e.python)
	if !strings.Contains(r.stderr+r.stdout, "opened the bundle") || !strings.Contains(r.stdout, "generation 1 is now current") {
		t.Errorf("install --from-bundle printed:\n%s\n%s", r.stdout, r.stderr)
	}
	if des, _ := os.ReadDir(os.TempDir()); len(des) > 0 {
		for _, de := range des {
			if strings.HasPrefix(de.Name(), "bitpoll-bundle-") {
				t.Errorf("the unpacked bundle %s is left in the temporary directory", de.Name())
			}
		}
	}
	r = e.cli("install", "--from-bundle", bundle, "--lock", flags[1])
	if r.code != exitUsage || !strings.Contains(r.stderr, "--from-bundle brings its own lock") {
		t.Errorf("--from-bundle with --lock: exit %d\n%s", r.code, r.stderr)
	}
}
