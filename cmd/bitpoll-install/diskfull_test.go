package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// smallFS mounts a tmpfs of size (mount's notation, "64m") for the test.
func smallFS(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Skip(t, "mounting a small tmpfs to fill needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		testenv.Skipf(t, "mount a tmpfs of %s: %v: %s", size, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill takes all but a few pages of the file system at dir with one
// file, and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// The build writes beside it (bytecode compiles in parallel): take
	// less each time the space is gone already.
	for size := int64(st.Bavail) * st.Bsize; size > 0; size -= 256 << 10 {
		err := unix.Fallocate(int(f.Fd()), 0, 0, size)
		if err == nil {
			return path
		}
		if err != unix.ENOSPC {
			t.Fatalf("fill %s: %v", dir, err)
		}
	}
	return path
}

// TestDiskFull installs the fixture app into a --root on a small file
// system. Too small for the lock's wheels, install refuses before it
// fetches anything, naming the file system, the space free and needed,
// and the fix. With room at the start, the disk filled while the build
// fetches, installs wheels or runs collectstatic is reported as that:
// the file being written, its file system and the fix, never as a network
// problem or a Python traceback. Nothing is switched, and once there is
// room again the same install completes with no leftovers.
func TestDiskFull(t *testing.T) {
	testkit.NeedNetwork(t)
	it := testkit.HostPython(t)
	lock := testkit.WriteLock(t, testkit.LockFixture(t, testkit.Target(it), "gunicorn==27.0.1", "whitenoise==6.12.0"))
	args := func(root string) []string {
		return []string{"--root", root, "install", "--lock", lock, "--app-source", testkit.FixtureApp(), "--python", it.Path}
	}

	t.Run("estimate", func(t *testing.T) {
		root := smallFS(t, "48m")
		r := runCLI(t, args(root)...)
		want := regexp.MustCompile(`(?m)^bitpoll-install: not enough space to build bitpoll 1\.0\.0: the file system at ` + regexp.QuoteMeta(root) +
			` \(holding ` + regexp.QuoteMeta(filepath.Join(root, "opt/bitpoll/store")) + ` and ` + regexp.QuoteMeta(filepath.Join(root, "var/cache/bitpoll-install")) +
			`\) has [0-9.]+ MiB free, and the build needs about [0-9.]+ MiB .*free space there \(bitpoll-install gc .*\) or install onto a larger file system, and run it again\n$`)
		if r.code != exitFailure || !want.MatchString(r.stderr) {
			t.Errorf("install on 48 MiB = %d, %q; want 1 and %s", r.code, r.stderr, want)
		}
		t.Logf("on 48 MiB: %s", lastLineOf(r.stderr))
		if ents, _ := os.ReadDir(filepath.Join(root, "var/cache/bitpoll-install")); len(ents) > 0 {
			t.Errorf("the refused install left %d entries in the cache; want it to fetch nothing", len(ents))
		}
	})

	for _, phase := range []store.Phase{install.PhaseFetchFiles, install.PhaseWheels, install.PhasePrepareApp} {
		t.Run(string(phase), func(t *testing.T) {
			root := smallFS(t, "400m")
			var filler string
			var stdout, stderr bytes.Buffer
			g := &globalOptions{stdout: &stdout, stderr: &stderr}
			g.hooks.At = func(p store.Phase, _ string) {
				if p == phase {
					filler = fill(t, root)
				}
			}
			code := execute(context.Background(), g, args(root))
			msg := stderr.String()
			if code != exitFailure || filler == "" {
				t.Fatalf("install with the disk filled at %s = %d (filled: %v), want 1\n%s", phase, code, filler != "", msg)
			}
			want := regexp.MustCompile(`bitpoll-install: the file system at ` + regexp.QuoteMeta(root) + ` is full \([0-9.]+ [KMG]?i?B free\) while writing ` +
				regexp.QuoteMeta(root) + `/\S+: free space there \(bitpoll-install gc removes old generations and unused cache entries\) and run it again; nothing was switched`)
			if !want.MatchString(msg) {
				t.Errorf("disk full at %s said:\n%s\nwant it to match %s", phase, msg, want)
			}
			t.Logf("disk full at %s: %s", phase, lastLineOf(msg))
			for _, wrong := range []string{"check the network", "Traceback", "context canceled"} {
				if strings.Contains(msg, wrong) {
					t.Errorf("disk full at %s said %q, which blames something else:\n%s", phase, wrong, msg)
				}
			}
			if _, err := os.Lstat(filepath.Join(root, "opt/bitpoll/current")); err == nil {
				t.Errorf("after the disk filled at %s, current exists", phase)
			}
			// Room again: the same command completes, and the sweep leaves
			// nothing of the failed run.
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			r := runCLI(t, args(root)...)
			if r.code != exitOK {
				t.Fatalf("install after freeing the space = %d\n%s", r.code, r.stderr)
			}
			checkStore(t, store.Layout{Root: root})
			checkNoLeftovers(t, root)
		})
	}
}
