package resolve

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/pyspec/wheeltag"
	"github.com/bitpoll-install/bitpoll-install/resolve/index"
)

// benchInput is Bitpoll's requirements file (from BITPOLL_MIRROR when set,
// else rebuilt from the committed lock's pins) plus the extra requirements,
// written to a file uv can read too.
func benchInput(b *testing.B) (Input, string) {
	b.Helper()
	data, err := os.ReadFile(committedLock)
	if err != nil {
		b.Fatal(err)
	}
	l, err := lockfile.Parse(data, "bitpoll.lock")
	if err != nil {
		b.Fatal(err)
	}
	var lines []string
	if m := os.Getenv("BITPOLL_MIRROR"); m != "" {
		out, err := exec.Command("git", "-C", m, "show", l.App.Commit+":"+l.App.Requirements).Output()
		if err != nil {
			b.Fatalf("read requirements from BITPOLL_MIRROR: %v", err)
		}
		lines = strings.Split(string(out), "\n")
	} else {
		for _, p := range l.Packages {
			if !p.BuildOnly && !strings.Contains(strings.Join(l.ExtraRequirements, " "), p.Name) {
				lines = append(lines, p.Name+"=="+p.Version)
			}
		}
	}
	lines = append(lines, l.ExtraRequirements...)
	file := filepath.Join(b.TempDir(), "requirements.txt")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	reqs, err := ReadRequirements(filepath.Dir(file), "requirements.txt")
	if err != nil {
		b.Fatal(err)
	}
	g, err := wheeltag.ParseGlibc(l.Glibc)
	if err != nil {
		b.Fatal(err)
	}
	var targets []wheeltag.Target
	for _, s := range l.Targets {
		t, err := wheeltag.ParseTarget(s, g)
		if err != nil {
			b.Fatal(err)
		}
		targets = append(targets, t)
	}
	cutoff, _ := time.Parse(time.RFC3339, l.ExcludeNewer)
	return Input{Requirements: reqs, Targets: targets, ExcludeNewer: cutoff}, file
}

// BenchmarkLock locks Bitpoll's requirements with bitpoll-install and with
// uv in the same run, both from empty caches ("cold") and from full ones
// ("warm"). Compare the ns/op of the sub-benchmarks.
func BenchmarkLock(b *testing.B) {
	needPyPI(b)
	in, file := benchInput(b)
	uv, uvErr := exec.LookPath("uv")
	cutoff := in.ExcludeNewer.Format(time.RFC3339)
	uvArgs := []string{"pip", "compile", "--universal", "--generate-hashes", "--quiet", "--python-version", "3.12", "--exclude-newer", cutoff, "-o", os.DevNull, file}

	b.Run("bitpoll-install/cold", func(b *testing.B) {
		for b.Loop() {
			idx := index.New(index.Options{CacheDir: b.TempDir()})
			if _, err := Resolve(context.Background(), idx, in, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("uv/cold", func(b *testing.B) {
		if uvErr != nil {
			testenv.Skip(b, "uv is not on PATH")
		}
		for b.Loop() {
			cmd := exec.Command(uv, append([]string{"--no-cache"}, uvArgs...)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("uv: %v\n%s", err, out)
			}
		}
	})
	warm := b.TempDir()
	b.Run("bitpoll-install/warm", func(b *testing.B) {
		idx := index.New(index.Options{CacheDir: warm})
		if _, err := Resolve(context.Background(), idx, in, nil); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			idx := index.New(index.Options{CacheDir: warm})
			if _, err := Resolve(context.Background(), idx, in, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	uvCache := b.TempDir()
	b.Run("uv/warm", func(b *testing.B) {
		if uvErr != nil {
			testenv.Skip(b, "uv is not on PATH")
		}
		args := append([]string{"--cache-dir", uvCache}, uvArgs...)
		if out, err := exec.Command(uv, args...).CombinedOutput(); err != nil {
			b.Fatalf("uv: %v\n%s", err, out)
		}
		for b.Loop() {
			if out, err := exec.Command(uv, args...).CombinedOutput(); err != nil {
				b.Fatalf("uv: %v\n%s", err, out)
			}
		}
	})
}
