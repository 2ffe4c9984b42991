package resolve

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/resolve/index"
	"github.com/bitpoll-install/bitpoll-install/standalone"
)

// committedLock is the lock at the top of the repository.
const committedLock = "../bitpoll.lock"

// needPyPI skips a test that talks to real PyPI when that cannot work.
func needPyPI(t testing.TB) *index.Client {
	t.Helper()
	testenv.NeedPyPI(t, "talks to real PyPI")
	return index.New(index.Options{UserAgent: "bitpoll-install-tests"})
}

// TestCommittedLockReproducible re-resolves the committed lock's pins
// against real PyPI: the packages must come back byte for byte. It needs no
// copy of Bitpoll's source, so it runs everywhere PyPI is reachable.
func TestCommittedLockReproducible(t *testing.T) {
	idx := needPyPI(t)
	want, err := os.ReadFile(committedLock)
	if err != nil {
		t.Fatal(err)
	}
	l, err := lockfile.Parse(want, "bitpoll.lock")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pkgs, err := ResolvePins(ctx, idx, l, nil)
	if err != nil {
		t.Fatal(err)
	}
	again := *l
	again.Packages = pkgs
	got, err := lockfile.Format(&again)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("re-resolving the committed lock's pins gave a different lock:\n%s", lineDiff(string(want), string(got)))
	}
}

// TestLockBitpollFromMirror runs the whole lock, source included, with the
// committed lock's inputs: the output must be the committed file, byte for
// byte.
func TestLockBitpollFromMirror(t *testing.T) {
	mirror := testenv.BitpollMirror(t)
	idx := needPyPI(t)
	want, err := os.ReadFile(committedLock)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := lockfile.Parse(want, "bitpoll.lock")
	if err != nil {
		t.Fatal(err)
	}
	cutoff, err := time.Parse(time.RFC3339, committed.ExcludeNewer)
	if err != nil {
		t.Fatalf("the committed lock has no usable exclude-newer: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l, err := Lock(ctx, idx, LockOptions{
		App:          AppSource{Src: mirror, Version: committed.App.Version},
		Extra:        committed.ExtraRequirements,
		Targets:      committed.Targets,
		Glibc:        committed.Glibc,
		ExcludeNewer: cutoff,
		CreatedBy:    committed.CreatedBy,
		WorkDir:      t.TempDir(),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The committed lock was made with --python-standalone: its
	// interpreters are the built-in builds for its targets.
	targets, err := l.ParsedTargets()
	if err != nil {
		t.Fatal(err)
	}
	if l.Interpreters, err = standalone.Entries(standalone.Builtin, targets); err != nil {
		t.Fatal(err)
	}
	got, err := lockfile.Format(l)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("locking Bitpoll %s again gave a different lock:\n%s", committed.App.Version, lineDiff(string(want), string(got)))
	}
	if l.App.Commit != "6d863fecf2489bbb8e6239936849a594bef489f1" || l.App.Tree != "dd84e479307b3a6adffd83dcd02c34cafb93fcb2" {
		t.Errorf("app pin = %s / %s, want Bitpoll 0.11.0's commit and tree", l.App.Commit, l.App.Tree)
	}
}

// TestLockDefaultTargetsMarksLibsassSdist locks real Bitpoll 0.11.0 for the
// default targets, x86_64 and aarch64. libsass 0.23.0 has wheels for x86_64
// only, so the lock carries its wheels and its sdist, the sdist marked for
// exactly the aarch64 targets, with its build requirements locked
// build-only for them.
func TestLockDefaultTargetsMarksLibsassSdist(t *testing.T) {
	mirror := testenv.BitpollMirror(t)
	idx := needPyPI(t)
	var n notes
	l, err := Lock(context.Background(), idx, LockOptions{
		App:       AppSource{Src: mirror, Version: "0.11.0"},
		Extra:     DefaultExtra,
		Targets:   DefaultTargets,
		Glibc:     DefaultGlibc,
		CreatedBy: "bitpoll-install test",
		WorkDir:   t.TempDir(),
	}, &n)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*lockfile.Package{}
	for i := range l.Packages {
		byName[l.Packages[i].Name] = &l.Packages[i]
	}
	libsass := byName["libsass"]
	if libsass == nil || libsass.Version != "0.23.0" || libsass.Sdist == nil || len(libsass.Wheels) == 0 || len(libsass.BuildRequires) == 0 {
		t.Fatalf("libsass = %+v, want 0.23.0 with its wheels, its sdist and build requirements", libsass)
	}
	if want := []string{"cp312-aarch64", "cp313-aarch64", "cp314-aarch64"}; !slices.Equal(libsass.SdistTargets, want) {
		t.Errorf("libsass sdist-targets = %q, want %q", libsass.SdistTargets, want)
	}
	for _, w := range libsass.Wheels {
		if !strings.Contains(w.Name, "x86_64") {
			t.Errorf("libsass wheel %s is not for x86_64", w.Name)
		}
	}
	for _, r := range libsass.BuildRequires {
		if p := byName[r]; p == nil || (!p.BuildOnly && p.Marker != "") {
			t.Errorf("libsass build requirement %s = %+v, want it locked", r, p)
		}
	}
	if !n.has("libsass 0.23.0 has no wheel for cp312-aarch64, cp313-aarch64, cp314-aarch64") {
		t.Errorf("notes = %q, want the marked sdist reported", n)
	}
	if err := l.Check(); err != nil {
		t.Fatalf("Check() = %v", err)
	}
	ts, err := l.ParsedTargets()
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range ts {
		sel, err := l.ForTarget(tg)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sel {
			if s.IsSdist && s.Package.Name != "libsass" {
				t.Errorf("ForTarget(%s) builds %s from source; only libsass lacks a wheel", tg, s.Package.Name)
			}
			if s.Package.Name == "libsass" && s.IsSdist != (tg.Arch == "aarch64") {
				t.Errorf("ForTarget(%s) libsass = %s, want the sdist exactly on aarch64", tg, s.File.Name)
			}
		}
	}
}

// lineDiff shows the first lines that differ, enough to see what changed.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 20; i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			fmt.Fprintf(&out, "line %d:\n  want %s\n  got  %s\n", i+1, a, b)
			shown++
		}
	}
	return out.String()
}
