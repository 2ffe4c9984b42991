package store

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildChecked builds a store path of testFiles plus a symlink.
func buildChecked(t *testing.T, s *Store, key string) string {
	t.Helper()
	p, _, err := s.Build(context.Background(), Key(key), "bitpoll", "1", func(dir string) error {
		if err := writeFiles(dir, testFiles); err != nil {
			return err
		}
		return os.Symlink("run.sh", filepath.Join(dir, "venv/bin/python"))
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// writable runs f with the directory of p (and p) writable, then puts
// their modes back, the way someone who is not stopped by the read-only
// modes (root, or an owner who chmods) would tamper.
func writable(t *testing.T, p string, f func()) {
	t.Helper()
	var restore []func()
	for _, q := range []string{filepath.Dir(p), p} {
		info, err := os.Lstat(q)
		if err != nil || info.Mode()&os.ModeSymlink != 0 {
			continue
		}
		if err := os.Chmod(q, info.Mode().Perm()|0o200); err != nil {
			t.Fatal(err)
		}
		restore = append(restore, func() { _ = os.Chmod(q, info.Mode().Perm()) })
	}
	f()
	for _, r := range restore {
		r()
	}
}

func checkAll(t *testing.T, s *Store, o CheckOptions) *CheckResult {
	t.Helper()
	r, err := s.Check(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSealRecord(t *testing.T) {
	s := newStore(t)
	p := buildChecked(t, s, "seal")
	seal, err := ReadSeal(p)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]SealEntry{}
	for _, e := range seal.Entries {
		got[e.Path] = e
	}
	for _, tt := range []struct {
		path, typ, mode, target string
	}{
		{".", TypeDir, "0555", ""},
		{"app", TypeDir, "0555", ""},
		{"app/manage.py", TypeFile, "0444", ""},
		{"venv/bin/run.sh", TypeFile, "0555", ""},
		{"venv/bin/python", TypeSymlink, "", "run.sh"},
		{MarkerFile, TypeFile, "0444", ""},
	} {
		e, ok := got[tt.path]
		if !ok {
			t.Errorf("seal record has no %q; entries %v", tt.path, seal.Entries)
			continue
		}
		if e.Type != tt.typ || e.Mode != tt.mode || e.Target != tt.target {
			t.Errorf("seal record of %q = %+v, want type %s, mode %q, target %q", tt.path, e, tt.typ, tt.mode, tt.target)
		}
	}
	if _, ok := got[SealFile]; ok {
		t.Errorf("seal record lists itself")
	}
	if e := got["app/manage.py"]; e.Size != int64(len(testFiles["app/manage.py"])) || len(e.SHA256) != 64 {
		t.Errorf("seal record of app/manage.py = %+v, want its size and sha256", e)
	}
	info, err := os.Lstat(filepath.Join(p, SealFile))
	if err != nil || info.Mode() != 0o444 {
		t.Errorf("seal record's mode = %v, %v, want 0444", info, err)
	}
	if err := s.Verify(p); err != nil {
		t.Errorf("Verify of a sealed path = %v", err)
	}
}

// TestCheckFindings injects each kind of damage into a sealed store path
// and checks that Check names it, and only it.
func TestCheckFindings(t *testing.T) {
	for _, tt := range []struct {
		name   string
		damage func(t *testing.T, p string)
		want   Finding // StorePath is filled in
	}{
		{"one byte", func(t *testing.T, p string) {
			f := filepath.Join(p, "app/manage.py")
			writable(t, f, func() {
				b, _ := os.ReadFile(f)
				b[3] ^= 1
				if err := os.WriteFile(f, b, 0o644); err != nil {
					t.Fatal(err)
				}
			})
		}, Finding{Path: "app/manage.py", Kind: FindChanged}},
		{"size", func(t *testing.T, p string) {
			f := filepath.Join(p, "app/manage.py")
			writable(t, f, func() {
				if err := os.Truncate(f, 2); err != nil {
					t.Fatal(err)
				}
			})
		}, Finding{Path: "app/manage.py", Kind: FindChanged, Want: fmt.Sprintf("%d bytes", len(testFiles["app/manage.py"])), Got: "2 bytes"}},
		{"mode", func(t *testing.T, p string) {
			if err := os.Chmod(filepath.Join(p, "app/manage.py"), 0o555); err != nil {
				t.Fatal(err)
			}
		}, Finding{Path: "app/manage.py", Kind: FindMode, Want: "0444", Got: "0555"}},
		{"added", func(t *testing.T, p string) {
			f := filepath.Join(p, "app/evil.py")
			writable(t, f, func() {
				if err := os.WriteFile(f, []byte("import os\n"), 0o444); err != nil {
					t.Fatal(err)
				}
			})
		}, Finding{Path: "app/evil.py", Kind: FindAdded}},
		{"missing", func(t *testing.T, p string) {
			f := filepath.Join(p, "venv/bin/run.sh")
			writable(t, f, func() {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
			})
		}, Finding{Path: "venv/bin/run.sh", Kind: FindMissing}},
		{"symlink target", func(t *testing.T, p string) {
			f := filepath.Join(p, "venv/bin/python")
			writable(t, f, func() {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink("/usr/bin/python3", f); err != nil {
					t.Fatal(err)
				}
			})
		}, Finding{Path: "venv/bin/python", Kind: FindTarget, Want: "run.sh", Got: "/usr/bin/python3"}},
		{"type", func(t *testing.T, p string) {
			f := filepath.Join(p, "venv/bin/python")
			writable(t, f, func() {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(f, []byte("#!/bin/sh\n"), 0o555); err != nil {
					t.Fatal(err)
				}
			})
		}, Finding{Path: "venv/bin/python", Kind: FindType, Want: TypeSymlink, Got: TypeFile}},
		{"damaged record", func(t *testing.T, p string) {
			f := filepath.Join(p, SealFile)
			writable(t, f, func() {
				b, _ := os.ReadFile(f)
				b = []byte(strings.Replace(string(b), `"0444"`, `"0644"`, 1))
				if err := os.WriteFile(f, b, 0o444); err != nil {
					t.Fatal(err)
				}
			})
		}, Finding{Path: SealFile, Kind: FindDamaged}},
		{"unsealed", func(t *testing.T, p string) {
			f := filepath.Join(p, SealFile)
			writable(t, f, func() {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
			})
		}, Finding{Path: ".", Kind: FindUnsealed}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			p := buildChecked(t, s, "check")
			other := buildChecked(t, s, "other") // untouched: must stay quiet
			if r := checkAll(t, s, CheckOptions{}); len(r.Findings) != 0 || r.StorePaths != 2 {
				t.Fatalf("Check before damage = %d store paths, findings %v, want 2 and none", r.StorePaths, r.Findings)
			}
			tt.damage(t, p)
			r := checkAll(t, s, CheckOptions{})
			if len(r.Findings) != 1 {
				t.Fatalf("Check after %s = %v, want exactly one finding %+v", tt.name, r.Findings, tt.want)
			}
			got := r.Findings[0]
			want := tt.want
			want.StorePath = p
			if got.StorePath != want.StorePath || got.Path != want.Path || got.Kind != want.Kind ||
				want.Want != "" && (got.Want != want.Want || got.Got != want.Got) {
				t.Errorf("Check after %s = %+v, want %+v", tt.name, got, want)
			}
			if got.StorePath == other {
				t.Errorf("Check blamed the untouched store path")
			}
		})
	}
}

// TestCheckSampleRolls checks that a sampled check hashes about its share
// of the content, and that successive runs, each starting where the last
// stopped, cover every file: a one-byte change is found within
// ceil(100/percent) runs, and not by every run.
func TestCheckSampleRolls(t *testing.T) {
	s := newStore(t)
	files := map[string]string{}
	for i := range 40 {
		files[fmt.Sprintf("lib/m%02d.py", i)] = strings.Repeat(fmt.Sprintf("line %d\n", i), 50+i)
	}
	p := mustBuild(t, s, Key("sample"), "bitpoll", "1", files)
	f := filepath.Join(p, "lib/m17.py")
	writable(t, f, func() {
		b, _ := os.ReadFile(f)
		b[0] = 'L'
		if err := os.WriteFile(f, b, 0o444); err != nil {
			t.Fatal(err)
		}
	})
	const runs = 4 // of 25 %
	start, found, hashed := "", 0, 0
	for i := range runs {
		r := checkAll(t, s, CheckOptions{Sample: 25, Start: start})
		if r.HashedFiles >= r.Files || r.HashedBytes*4 < r.Bytes {
			t.Errorf("run %d hashed %d of %d files, %d of %d bytes, want at least 25%% and not all", i, r.HashedFiles, r.Files, r.HashedBytes, r.Bytes)
		}
		for _, f := range r.Findings {
			if f.Path != "lib/m17.py" || f.Kind != FindChanged {
				t.Errorf("run %d found %v, want only lib/m17.py changed", i, f)
			}
		}
		found += len(r.Findings)
		hashed += r.HashedFiles
		start = r.Next
	}
	if found == 0 || found == runs {
		t.Errorf("%d sampled runs of 25%% found the changed file %d times, want at least once and not every time", runs, found)
	}
	// The windows are contiguous, so hashing as many files as there are
	// covers each one.
	if r := checkAll(t, s, CheckOptions{}); hashed < r.Files {
		t.Errorf("%d sampled runs of 25%% hashed %d files, want all %d", runs, hashed, r.Files)
	}
}

// BenchmarkCheck rehashes a generated store path and, in the same run,
// runs sha256sum on the same files, split over as many processes as Check
// has workers; both rates are reported in MB/s. "large" is 64 MiB in
// files of 1 KiB to 1 MiB; "venv" is 5,000 files of 256 B to 32 KiB, the
// shape of a Python venv (the fixture app's has 4,858 files, 32 MiB).
func BenchmarkCheck(b *testing.B) {
	b.Run("large", func(b *testing.B) {
		benchCheck(b, func(i int) int { return 1 << (10 + i%11) }, func(_ int, total int64) bool { return total < 64<<20 })
	})
	b.Run("venv", func(b *testing.B) {
		benchCheck(b, func(i int) int { return 256 << (i % 8) }, func(i int, _ int64) bool { return i < 5000 })
	})
}

func benchCheck(b *testing.B, size func(i int) int, more func(i int, total int64) bool) {
	sha256sum, err := exec.LookPath("sha256sum")
	if err != nil {
		b.Fatalf("sha256sum is not installed (coreutils): %v", err)
	}
	root := b.TempDir()
	b.Cleanup(func() { _ = removeTree(root) })
	s, err := Open(Layout{Root: root})
	if err != nil {
		b.Fatal(err)
	}
	var names []string
	var total int64
	p, _, err := s.Build(context.Background(), Key("bench"), "bitpoll", "1", func(dir string) error {
		buf := make([]byte, 1<<20)
		for i := 0; more(i, total); i++ {
			n := size(i)
			if _, err := rand.Read(buf[:n]); err != nil {
				return err
			}
			name := fmt.Sprintf("d%d/f%d", i%16, i)
			if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, name), buf[:n], 0o644); err != nil {
				return err
			}
			names = append(names, name)
			total += int64(n)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	procs := runtime.GOMAXPROCS(0)
	var sumNs int64
	n := 0
	for b.Loop() {
		n++
		r, err := s.Check(context.Background(), CheckOptions{})
		if err != nil || len(r.Findings) != 0 || r.HashedBytes < total {
			b.Fatalf("Check = %v, %v, want no findings and every byte hashed", r, err)
		}
	}
	checkNs := b.Elapsed().Nanoseconds()
	// The peer, on the same files, as many times as Check ran.
	for range n {
		var wg sync.WaitGroup
		errs := make([]error, procs)
		start := time.Now()
		for w := range procs {
			var args []string
			for i := w; i < len(names); i += procs {
				args = append(args, names[i])
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := exec.Command(sha256sum, args...)
				cmd.Dir = p
				if out, err := cmd.CombinedOutput(); err != nil {
					errs[w] = fmt.Errorf("sha256sum: %v\n%s", err, out)
				}
			}()
		}
		wg.Wait()
		sumNs += time.Since(start).Nanoseconds()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	mb := float64(total) * float64(n) / 1e6
	b.ReportMetric(mb/(float64(checkNs)/1e9), "check_MB/s")
	b.ReportMetric(mb/(float64(sumNs)/1e9), "sha256sum_MB/s")
}
