package wheel

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// with returns the demo wheel with extra members appended.
func with(files ...zfile) wheelSpec {
	w := demoWheel()
	w.files = append(w.files, files...)
	return w
}

func strp(s string) *string { return &s }

// TestInstallRefuses builds one hostile wheel per case. Each must be
// refused with an error naming the wheel and the member at fault, and
// leave the environment exactly as it was, even when some members were
// already written (the bad one sorts last in several cases).
func TestInstallRefuses(t *testing.T) {
	tests := []struct {
		name    string
		spec    wheelSpec
		opts    Options
		kind    error
		wantMsg string // must appear in the error, usually the member
	}{
		{"dotdot", with(zfile{name: "../evil.py", body: "x"}), Options{}, ErrUnsafe, `member "../evil.py"`},
		{"dotdot inside", with(zfile{name: "demo/../../evil.py", body: "x"}), Options{}, ErrUnsafe, `member "demo/../../evil.py"`},
		{"absolute", with(zfile{name: "/etc/evil", body: "x"}), Options{}, ErrUnsafe, `member "/etc/evil": unsafe wheel: is an absolute path`},
		{"backslash", with(zfile{name: `demo\..\..\evil`, body: "x"}), Options{}, ErrUnsafe, `backslash`},
		{"empty element", with(zfile{name: "demo//x.py", body: "x"}), Options{}, ErrUnsafe, `member "demo//x.py"`},
		{"symlink", with(zfile{name: "zzz/link", body: "/etc/passwd", mode: fs.ModeSymlink | 0o777}), Options{}, ErrUnsafe, `member "zzz/link": unsafe wheel: is a symbolic link to "/etc/passwd"; only regular files and directories are allowed`},
		{"fifo", with(zfile{name: "zzz/fifo", body: "", mode: fs.ModeNamedPipe | 0o644}), Options{}, ErrUnsafe, `member "zzz/fifo": unsafe wheel: is a special file (mode prw-r--r--)`},
		{"duplicate", with(zfile{name: "demo/cli.py", body: "evil()\n", noRecord: true}), Options{}, ErrUnsafe, `member "demo/cli.py": unsafe wheel: appears twice`},
		{"file and dir", with(zfile{name: "demo/cli.py/x", body: "x"}), Options{}, ErrUnsafe, `member "demo/cli.py/x": unsafe wheel: lies below "demo/cli.py"`},
		{"same destination", with(zfile{name: "demo-1.0.data/purelib/demo/cli.py", body: "x"}), Options{}, ErrUnsafe, `installs to`},
		{"launcher over script", with(zfile{name: "demo-1.0.data/scripts/demo", body: "x"}), Options{}, ErrUnsafe, `installs to`},
		{"unknown data key", with(zfile{name: "demo-1.0.data/etc/passwd", body: "x"}), Options{}, ErrUnsafe, `member "demo-1.0.data/etc/passwd": unsafe wheel: is in .data directory "etc"`},
		{"data key as file", with(zfile{name: "demo-1.0.data/scripts", body: "x"}), Options{}, ErrUnsafe, `member "demo-1.0.data/scripts": unsafe wheel: is a file, but earlier members lie below it`},
		{"other data dir", with(zfile{name: "other-1.0.data/scripts/x", body: "x"}), Options{}, ErrUnsafe, `.data directory "other-1.0.data"`},
		{"not in RECORD", with(zfile{name: "zzz/extra.py", body: "x", noRecord: true}), Options{}, ErrRecord, `member "zzz/extra.py": RECORD mismatch: is not listed in RECORD`},
		{"missing from zip", wheelSpec{files: demoWheel().files, record: func(r []recordEntry) []recordEntry {
			return append(r, recordEntry{Path: "demo/gone.py", Hash: r[0].Hash, Size: r[0].Size})
		}}, Options{}, ErrRecord, `member "demo/gone.py": RECORD mismatch: is listed in RECORD but missing`},
		{"hash mismatch", wheelSpec{files: append(demoWheel().files, zfile{name: "zzz/late.py", body: "x"}), record: func(r []recordEntry) []recordEntry {
			for i := range r {
				if r[i].Path == "zzz/late.py" {
					r[i].Hash = formatHash("sha256", make([]byte, 32))
				}
			}
			return r
		}}, Options{}, ErrRecord, `member "zzz/late.py": RECORD mismatch: content hashes to`},
		{"size mismatch", wheelSpec{files: demoWheel().files, record: func(r []recordEntry) []recordEntry {
			r[0].Size++
			return r
		}}, Options{}, ErrRecord, `zip header says`},
		{"no hash", wheelSpec{files: demoWheel().files, record: func(r []recordEntry) []recordEntry {
			r[0].Hash = ""
			return r
		}}, Options{}, ErrRecord, `has no hash or size in RECORD`},
		{"md5 hash", wheelSpec{files: demoWheel().files, record: func(r []recordEntry) []recordEntry {
			r[0].Hash = "md5=1B2M2Y8AsgTpgAmY7PhCfg"
			return r
		}}, Options{}, nil, `want sha256, sha384 or sha512`},
		{"bigger than declared", with(zfile{name: "zzz/bomb.bin", body: strings.Repeat("\x00", 1<<20), headerSize: 10}), Options{}, ErrRecord, `member "zzz/bomb.bin": RECORD mismatch`},
		{"zip bomb", with(zfile{name: "zzz/bomb.bin", body: strings.Repeat("\x00", 1<<20)}), Options{MaxSize: 1 << 19, MaxRatio: 1 << 20}, ErrLimit, `more than 524288 bytes, at member "zzz/bomb.bin"`},
		{"zip bomb for its size", with(zfile{name: "zzz/bomb.bin", body: strings.Repeat("\x00", 1<<20)}), Options{}, ErrLimit, `at member "zzz/bomb.bin" (raise the limit with --unpack-ratio)`},
		{"too many files", demoWheel(), Options{MaxFiles: 5}, ErrLimit, `more than 5 entries`},
		{"entry point path", wheelSpec{files: []zfile{
			{name: "demo/__init__.py", body: ""},
			{name: "demo-1.0.dist-info/entry_points.txt", body: "[console_scripts]\n../../evil = demo:main\n"},
		}}, Options{}, ErrUnsafe, `unsafe wheel: entry_points.txt line 2: script name "../../evil"`},
		{"dist-info name", wheelSpec{distInfo: "other-1.0.dist-info"}, Options{}, ErrUnsafe, `.dist-info directory "other-1.0.dist-info" does not match the wheel file name (want "demo-1.0.dist-info")`},
		{"dist-info version", wheelSpec{distInfo: "demo-2.0.dist-info"}, Options{}, ErrUnsafe, `"demo-2.0.dist-info" does not match`},
		{"two dist-infos", with(zfile{name: "other-1.0.dist-info/METADATA", body: "x"}), Options{}, ErrUnsafe, `found 2 .dist-info directories`},
		{"no WHEEL", wheelSpec{noWheel: true}, Options{}, ErrUnsafe, `member "demo-1.0.dist-info/WHEEL": unsafe wheel: is missing`},
		{"wheel version 2", wheelSpec{wheel: strp("Wheel-Version: 2.0\nRoot-Is-Purelib: true\n")}, Options{}, nil, `Wheel-Version "2.0" is not supported`},
		{"bad RECORD csv", wheelSpec{rawRecord: strp("a,b\n")}, Options{}, nil, `line 1 has 2 fields, want 3`},
		{"duplicate metadata", with(zfile{name: "demo-1.0.dist-info/entry_points.txt", body: "[console_scripts]\nx = os:system\n"}), Options{}, ErrUnsafe, `member "demo-1.0.dist-info/entry_points.txt": unsafe wheel: appears twice`},
		{"bad file name", wheelSpec{filename: "demo-1.0.zip"}, Options{}, nil, `file name "demo-1.0.zip" is not`},
	}
	// Each wheel is installed from the zip, and again while unpacking it
	// into a cache, which must then hold nothing either.
	for _, tt := range tests {
		for _, unpack := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/unpack=%v", tt.name, unpack), func(t *testing.T) {
				dir := t.TempDir()
				whl := tt.spec.build(t, dir)
				root := filepath.Join(dir, "venv")
				s := venvScheme(root)
				for _, d := range []string{s.Scripts, s.Purelib} {
					os.MkdirAll(d, 0o755)
				}
				before := snapshot(t, root)
				cache := filepath.Join(dir, "cache")
				if err := os.Mkdir(cache, 0o755); err != nil {
					t.Fatal(err)
				}
				o := tt.opts
				o.Python = testPython
				if unpack {
					o.UnpackTo = filepath.Join(cache, "demo")
				}
				_, err := Install(whl, s, o)
				if err == nil {
					t.Fatalf("Install(%s) = nil error, want one containing %q", tt.name, tt.wantMsg)
				}
				if tt.kind != nil && !errors.Is(err, tt.kind) {
					t.Errorf("Install(%s) = %v, want errors.Is %v", tt.name, err, tt.kind)
				}
				if !strings.HasPrefix(err.Error(), "install wheel \""+filepath.Base(whl)+"\": ") || !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("Install(%s) = %q, want the wheel file name and %q", tt.name, err, tt.wantMsg)
				}
				if after := snapshot(t, root); after != before {
					t.Errorf("Install(%s) left files behind:\nbefore:\n%s\nafter:\n%s", tt.name, before, after)
				}
				if ents, _ := os.ReadDir(cache); len(ents) != 0 {
					t.Errorf("Install(%s) left %d entries in the cache %q", tt.name, len(ents), cache)
				}
			})
		}
	}
}

// TestInstallRefusesOverwrite puts another distribution's file where the
// wheel installs one; the error names that distribution and nothing of the
// wheel stays.
func TestInstallRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	whl := demoWheel().build(t, dir)
	root := filepath.Join(dir, "venv")
	s := venvScheme(root)
	other := filepath.Join(s.Purelib, "other-1.0.dist-info")
	os.MkdirAll(other, 0o755)
	os.MkdirAll(filepath.Join(s.Purelib, "demo"), 0o755)
	os.WriteFile(filepath.Join(s.Purelib, "demo/tool.sh"), []byte("theirs"), 0o644)
	os.WriteFile(filepath.Join(other, "RECORD"), []byte("demo/tool.sh,,\nother-1.0.dist-info/RECORD,,\n"), 0o644)
	before := snapshot(t, root)
	_, err := Install(whl, s, Options{Python: testPython})
	want := `member "demo/tool.sh": file exists: would overwrite "` + filepath.Join(s.Purelib, "demo/tool.sh") + `", installed by "other-1.0.dist-info"`
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), want) {
		t.Errorf("Install over another distribution = %v, want %q", err, want)
	}
	if after := snapshot(t, root); after != before {
		t.Errorf("failed install changed the tree:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// A stray launcher in bin/ is caught the same way.
	os.Remove(filepath.Join(s.Purelib, "demo/tool.sh"))
	os.MkdirAll(s.Scripts, 0o755)
	os.WriteFile(filepath.Join(s.Scripts, "demo-gui"), []byte("stray"), 0o755)
	before = snapshot(t, root)
	_, err = Install(whl, s, Options{Python: testPython})
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), `which is not ours`) {
		t.Errorf("Install over a stray script = %v, want ErrExists", err)
	}
	if after := snapshot(t, root); after != before {
		t.Errorf("failed install changed the tree:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestInstallRefusesInjection(t *testing.T) {
	dir := t.TempDir()
	spec := demoWheel()
	for i, f := range spec.files {
		if strings.HasSuffix(f.name, "entry_points.txt") {
			spec.files[i].body = "[console_scripts]\nx = os:system('id')\n"
		}
	}
	whl := spec.build(t, dir)
	root := filepath.Join(dir, "venv")
	_, err := Install(whl, venvScheme(root), Options{Python: testPython})
	if err == nil || !strings.Contains(err.Error(), `member "demo-1.0.dist-info/entry_points.txt"`) {
		t.Errorf("Install(entry point with code) = %v, want a refusal naming entry_points.txt", err)
	}
	if _, err := os.Stat(root); err == nil {
		t.Errorf("refused install created %q", root)
	}
}
