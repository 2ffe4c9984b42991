package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testkit"
)

// chmodW runs f with p's directory and p writable for their owner, then
// puts their modes back: tampering as anyone who can chmod would.
func chmodW(t *testing.T, p string, f func()) {
	t.Helper()
	for _, q := range []string{filepath.Dir(p), p} {
		info, err := os.Lstat(q)
		if err != nil {
			continue
		}
		if err := os.Chmod(q, info.Mode().Perm()|0o200); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(q, info.Mode().Perm())
	}
	f()
}

// verifyFindings runs verify --json and returns its exit code, its
// findings and its summary.
func (e *genEnv) verifyFindings(args ...string) (int, []map[string]any, map[string]any) {
	e.t.Helper()
	r := e.cli(append([]string{"--json", "verify"}, args...)...)
	var findings []map[string]any
	var summary map[string]any
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			e.t.Fatalf("verify --json printed %q, not JSON: %v\nstderr: %s", line, err, r.stderr)
		}
		switch m["message_type"] {
		case "finding":
			findings = append(findings, m)
		case "verify_summary":
			summary = m
		}
	}
	if summary == nil {
		e.t.Fatalf("verify --json printed no verify_summary:\n%s\nstderr: %s", r.stdout, r.stderr)
	}
	return r.code, findings, summary
}

// TestVerify installs the fixture app with --root, then injects a
// one-byte change, a mode change and an added file in turn: verify names
// each (in text and JSON) with exit 3, and is quiet again once it is
// undone. A sampled run checks modes in full and keeps its position.
func TestVerify(t *testing.T) {
	e := newGenEnv(t)
	e.must(append([]string{"install"}, e.version(testkit.FixtureApp(), "1.0.0")...)...)
	sp := e.meta(1).StorePath
	r := e.must("verify")
	if !strings.Contains(r.stdout, "checked 1 store path") {
		t.Fatalf("verify of a fresh install printed:\n%s\nwant the summary of 1 store path", r.stdout)
	}
	site, _ := filepath.Glob(filepath.Join(sp, "venv/lib/python3.*/site-packages"))
	if len(site) != 1 {
		t.Fatalf("no site-packages in %s: %q", sp, site)
	}
	relSite, _ := filepath.Rel(sp, site[0])
	relSite = filepath.ToSlash(relSite)
	inits, _ := filepath.Glob(filepath.Join(site[0], "django/__init__.py"))
	if len(inits) != 1 {
		t.Fatalf("the fixture's venv has no django/__init__.py")
	}
	manage := filepath.Join(sp, "app/manage.py")
	info, err := os.Stat(manage)
	if err != nil {
		t.Fatal(err)
	}
	manageMode := info.Mode().Perm() // 0555 or 0444: flipping the x bits is a change either way

	for _, tt := range []struct {
		name         string
		do, undo     func()
		path, kind   string
		wantInStdout string
	}{
		{
			name: "one byte of a wheel's file",
			do: func() {
				chmodW(t, inits[0], func() { flipByte(t, inits[0], 10) })
			},
			undo: func() {
				chmodW(t, inits[0], func() { flipByte(t, inits[0], 10) })
			},
			path: relSite + "/django/__init__.py", kind: "changed", wantInStdout: "changed: " + inits[0] + ": recorded sha256",
		},
		{
			name: "mode",
			do: func() {
				if err := os.Chmod(manage, manageMode^0o111); err != nil {
					t.Fatal(err)
				}
			},
			undo: func() {
				if err := os.Chmod(manage, manageMode); err != nil {
					t.Fatal(err)
				}
			},
			path: "app/manage.py", kind: "mode", wantInStdout: fmt.Sprintf("mode: %s: recorded %04o, found %04o", manage, manageMode, manageMode^0o111),
		},
		{
			name: "added .pth file",
			do: func() {
				p := filepath.Join(site[0], "zz-evil.pth")
				chmodW(t, p, func() {
					if err := os.WriteFile(p, []byte("import os\n"), 0o444); err != nil {
						t.Fatal(err)
					}
				})
			},
			undo: func() {
				p := filepath.Join(site[0], "zz-evil.pth")
				chmodW(t, p, func() {
					if err := os.Remove(p); err != nil {
						t.Fatal(err)
					}
				})
			},
			path: relSite + "/zz-evil.pth", kind: "added", wantInStdout: "added: " + filepath.Join(site[0], "zz-evil.pth"),
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.do()
			r := e.cli("verify")
			if r.code != exitFindings || !strings.Contains(r.stdout, tt.wantInStdout) || !strings.Contains(r.stderr, "1 finding in") {
				t.Errorf("verify after %s = exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d, %q and \"1 finding in\"", tt.name, r.code, r.stdout, r.stderr, exitFindings, tt.wantInStdout)
			}
			code, findings, _ := e.verifyFindings()
			if code != exitFindings || len(findings) != 1 || findings[0]["path"] != tt.path || findings[0]["kind"] != tt.kind || findings[0]["store_path"] != sp {
				t.Errorf("verify --json after %s = exit %d, findings %v, want exit %d and one %s finding of %s in %s", tt.name, code, findings, exitFindings, tt.kind, tt.path, sp)
			}
			// The structure is checked in full by a sampled run too.
			if tt.kind != "changed" {
				if code, findings, _ := e.verifyFindings("--sample", "1"); code != exitFindings || len(findings) != 1 {
					t.Errorf("verify --sample 1 after %s = exit %d, findings %v, want it found", tt.name, code, findings)
				}
			}
			tt.undo()
			if r := e.cli("verify"); r.code != exitOK {
				t.Errorf("verify after undoing %s = exit %d\nstdout:\n%s\nstderr:\n%s\nwant 0", tt.name, r.code, r.stdout, r.stderr)
			}
		})
	}

	// Sampled runs: each rehashes a share and moves the position on.
	pos := filepath.Join(e.root, "var/lib/bitpoll", verifyPositionFile)
	_ = os.Remove(pos)
	var hashed float64
	var files float64
	var nexts []string
	for range 4 {
		code, findings, sum := e.verifyFindings("--sample", "25")
		if code != exitOK || len(findings) != 0 {
			t.Fatalf("verify --sample 25 = exit %d, %v, want 0 and no findings", code, findings)
		}
		hashed += sum["hashed_files"].(float64)
		files = sum["files"].(float64)
		data, err := os.ReadFile(pos)
		if err != nil {
			t.Fatalf("verify --sample kept no position: %v", err)
		}
		nexts = append(nexts, string(data))
		if h := sum["hashed_files"].(float64); h >= files || h*4 < files {
			t.Errorf("verify --sample 25 hashed %v of %v files, want a quarter or a little more", h, files)
		}
	}
	if hashed < files || nexts[0] == nexts[1] {
		t.Errorf("4 runs of verify --sample 25 hashed %v files of %v, positions %q: want every file covered and the position moving", hashed, files, nexts)
	}
	if r := e.cli("verify", "--sample", "0"); r.code != exitUsage {
		t.Errorf("verify --sample 0 = exit %d, want %d (usage)", r.code, exitUsage)
	}
}

func flipByte(t *testing.T, p string, i int) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[i] ^= 0x20
	info, _ := os.Stat(p)
	if err := os.WriteFile(p, b, info.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}
