package wheel

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
)

const testPython = "/venv/bin/python"

// demoWheel exercises every part of the layout: root files (one
// executable), all five .data keys, a "#!python" script, a plain script
// and both kinds of entry point.
func demoWheel() wheelSpec {
	return wheelSpec{files: []zfile{
		{name: "demo/"}, // directory entries are allowed and skipped
		{name: "demo/__init__.py", body: "VERSION = '1.0'\n"},
		{name: "demo/cli.py", body: "def main():\n    return 0\n\n\nclass App:\n    @staticmethod\n    def run():\n        return 0\n"},
		{name: "demo/tool.sh", body: "#!/bin/sh\necho tool\n", mode: 0o755},
		{name: "demo-1.0.data/scripts/run", body: "#!python -u\nprint('run')\n"},
		{name: "demo-1.0.data/scripts/plain.sh", body: "#!/bin/sh\necho plain\n"},
		{name: "demo-1.0.data/headers/demo.h", body: "#define DEMO 1\n"},
		{name: "demo-1.0.data/data/share/demo/readme.txt", body: "data\n"},
		{name: "demo-1.0.data/platlib/demo_ext.so", body: "\x7fELF fake", mode: 0o755},
		{name: "demo-1.0.data/purelib/demo_extra.py", body: "X = 1\n"},
		{name: "demo-1.0.dist-info/METADATA", body: "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"},
		{name: "demo-1.0.dist-info/entry_points.txt", body: "[console_scripts]\ndemo = demo.cli:main\n\n[gui_scripts]\ndemo-gui = demo.cli:App.run [gui]\n\n[demo.plugins]\nignored = x:y\n"},
	}}
}

func TestInstallLayout(t *testing.T) {
	dir := t.TempDir()
	whl := demoWheel().build(t, dir)
	root := filepath.Join(dir, "venv")
	s := venvScheme(root)
	res, err := Install(whl, s, Options{Python: testPython, Installer: "bitpoll-install"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Name != "demo" || res.Version != "1.0" {
		t.Errorf("Install(%q) name, version = %q, %q, want \"demo\", \"1.0\"", whl, res.Name, res.Version)
	}
	wantFiles := []string{
		"bin/demo",
		"bin/demo-gui",
		"bin/plain.sh",
		"bin/run",
		"include/site/python3.11/demo/demo.h",
		"lib/python3.11/site-packages/demo-1.0.dist-info/INSTALLER",
		"lib/python3.11/site-packages/demo-1.0.dist-info/METADATA",
		"lib/python3.11/site-packages/demo-1.0.dist-info/RECORD",
		"lib/python3.11/site-packages/demo-1.0.dist-info/WHEEL",
		"lib/python3.11/site-packages/demo-1.0.dist-info/entry_points.txt",
		"lib/python3.11/site-packages/demo/__init__.py",
		"lib/python3.11/site-packages/demo/cli.py",
		"lib/python3.11/site-packages/demo/tool.sh",
		"lib/python3.11/site-packages/demo_extra.py",
		"lib64/python3.11/site-packages/demo_ext.so",
		"share/demo/readme.txt",
	}
	if !reflect.DeepEqual(res.Files, wantFiles) {
		t.Errorf("Install(%q).Files = %q, want %q", whl, res.Files, wantFiles)
	}

	sp := s.Purelib
	tests := []struct {
		path, body string
		mode       os.FileMode
	}{
		{filepath.Join(sp, "demo/__init__.py"), "VERSION = '1.0'\n", 0o644},
		{filepath.Join(sp, "demo/tool.sh"), "#!/bin/sh\necho tool\n", 0o755},
		{filepath.Join(sp, "demo_extra.py"), "X = 1\n", 0o644},
		{filepath.Join(s.Platlib, "demo_ext.so"), "\x7fELF fake", 0o755},
		{filepath.Join(s.Scripts, "run"), "#!/venv/bin/python\nprint('run')\n", 0o755},
		{filepath.Join(s.Scripts, "plain.sh"), "#!/bin/sh\necho plain\n", 0o755},
		{filepath.Join(s.Headers, "demo.h"), "#define DEMO 1\n", 0o644},
		{filepath.Join(root, "share/demo/readme.txt"), "data\n", 0o644},
		{filepath.Join(sp, "demo-1.0.dist-info/INSTALLER"), "bitpoll-install\n", 0o644},
		{filepath.Join(s.Scripts, "demo"), "#!/venv/bin/python\nimport sys\nfrom demo.cli import main\nif __name__ == \"__main__\":\n    sys.exit(main())\n", 0o755},
		{filepath.Join(s.Scripts, "demo-gui"), "#!/venv/bin/python\nimport sys\nfrom demo.cli import App\nif __name__ == \"__main__\":\n    sys.exit(App.run())\n", 0o755},
	}
	for _, tt := range tests {
		fi, err := os.Stat(tt.path)
		if err != nil {
			t.Error(err)
			continue
		}
		if got := readFile(t, tt.path); got != tt.body {
			t.Errorf("content of %q = %q, want %q", tt.path, got, tt.body)
		}
		if fi.Mode().Perm() != tt.mode {
			t.Errorf("mode of %q = %v, want %v", tt.path, fi.Mode().Perm(), tt.mode)
		}
	}
	if _, err := os.Stat(filepath.Join(sp, "demo-1.0.data")); err == nil {
		t.Errorf("the .data directory was installed as is into %q", sp)
	}
}

// TestInstallRecord checks the rewritten RECORD: every installed file
// relative to site-packages, with the hash and size of the installed bytes.
func TestInstallRecord(t *testing.T) {
	dir := t.TempDir()
	whl := demoWheel().build(t, dir)
	root := filepath.Join(dir, "venv")
	s := venvScheme(root)
	res, err := Install(whl, s, Options{Python: testPython, Installer: "bitpoll-install"})
	if err != nil {
		t.Fatal(err)
	}
	rec := readFile(t, filepath.Join(s.Purelib, "demo-1.0.dist-info/RECORD"))
	entries, err := parseRecord(strings.NewReader(rec))
	if err != nil {
		t.Fatalf("parseRecord(installed RECORD) = %v", err)
	}
	if len(entries) != len(res.Files) {
		t.Errorf("installed RECORD has %d rows, want %d (one per installed file)", len(entries), len(res.Files))
	}
	for i, e := range entries {
		if i > 0 && entries[i-1].Path >= e.Path {
			t.Errorf("RECORD rows not sorted: %q before %q", entries[i-1].Path, e.Path)
		}
		full := filepath.Join(s.Purelib, filepath.FromSlash(e.Path))
		if e.Path == "demo-1.0.dist-info/RECORD" {
			if e.Hash != "" || e.Size != -1 {
				t.Errorf("RECORD row for itself = %+v, want empty hash and size", e)
			}
			continue
		}
		want := recordRow(zfile{name: e.Path, body: readFile(t, full)})
		if e != want {
			t.Errorf("RECORD row %+v, want %+v", e, want)
		}
	}
	for _, p := range []string{"../../../bin/demo", "../../../bin/run", "../../../lib64/python3.11/site-packages/demo_ext.so", "demo-1.0.dist-info/INSTALLER"} {
		if !strings.Contains("\n"+rec, "\n"+p+",sha256=") {
			t.Errorf("installed RECORD lacks a row for %q:\n%s", p, rec)
		}
	}
}

// TestInstallDeterministic installs the same wheel twice, the second time
// under a restrictive umask, and expects identical trees, modes included.
func TestInstallDeterministic(t *testing.T) {
	dir := t.TempDir()
	whl := demoWheel().build(t, dir)
	var snaps []string
	for _, umask := range []int{0o022, 0o077} {
		root := filepath.Join(dir, fmt.Sprintf("venv-%o", umask))
		old := syscall.Umask(umask)
		_, err := Install(whl, venvScheme(root), Options{Python: testPython, Installer: "x"})
		syscall.Umask(old)
		if err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, snapshot(t, root))
	}
	if snaps[0] != snaps[1] {
		t.Errorf("two installs differ:\n%s\n---\n%s", snaps[0], snaps[1])
	}
}

func TestInstallPlatlibRoot(t *testing.T) {
	dir := t.TempDir()
	notPure := "Wheel-Version: 1.0\nRoot-Is-Purelib: false\n"
	spec := wheelSpec{
		filename: "Demo_Pkg-2.0-cp311-cp311-manylinux_2_17_x86_64.whl",
		distInfo: "demo.pkg-2.0.dist-info",
		wheel:    &notPure,
		files:    []zfile{{name: "demo_pkg/_speed.so", body: "so", mode: 0o755}},
	}
	whl := spec.build(t, dir)
	s := venvScheme(filepath.Join(dir, "venv"))
	res, err := Install(whl, s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Name != "demo.pkg" {
		t.Errorf("Install(%q).Name = %q, want %q", whl, res.Name, "demo.pkg")
	}
	for _, p := range []string{"demo_pkg/_speed.so", "demo.pkg-2.0.dist-info/RECORD"} {
		if _, err := os.Stat(filepath.Join(s.Platlib, p)); err != nil {
			t.Errorf("root member %q not in platlib: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(s.Platlib, "demo.pkg-2.0.dist-info/INSTALLER")); err == nil {
		t.Errorf("INSTALLER written although Options.Installer is empty")
	}
}

func TestInstallLongShebang(t *testing.T) {
	dir := t.TempDir()
	whl := demoWheel().build(t, dir)
	s := venvScheme(filepath.Join(dir, "venv"))
	python := "/opt/my venv/bin/python"
	if _, err := Install(whl, s, Options{Python: python}); err != nil {
		t.Fatal(err)
	}
	want := "#!/bin/sh\n'''exec' '/opt/my venv/bin/python' \"$0\" \"$@\"\n' '''\nprint('run')\n"
	if got := readFile(t, filepath.Join(s.Scripts, "run")); got != want {
		t.Errorf("script run = %q, want %q", got, want)
	}
}

func TestInstallNeedsPython(t *testing.T) {
	dir := t.TempDir()
	whl := demoWheel().build(t, dir)
	root := filepath.Join(dir, "venv")
	for _, python := range []string{"", "python3", "/a'b/python", "/a\nb"} {
		_, err := Install(whl, venvScheme(root), Options{Python: python})
		if err == nil || !strings.Contains(err.Error(), "Options.Python") {
			t.Errorf("Install(Python: %q) = %v, want an error about Options.Python", python, err)
		}
		if _, err := os.Stat(root); err == nil {
			t.Errorf("Install(Python: %q) created %q before checking", python, root)
		}
	}
}

// TestUnpackCopy installs from an unpacked tree and expects the same tree
// as a plain install, sharing no inode with the unpacked tree, so that
// damage to the tree after the install never reaches the environment.
func TestUnpackCopy(t *testing.T) {
	dir := t.TempDir()
	whl := demoWheel().build(t, dir)
	cache := filepath.Join(dir, "cache", "demo")
	if err := os.Mkdir(filepath.Dir(cache), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Unpack(whl, cache, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Unpack(whl, cache, Options{}); !errors.Is(err, ErrExists) {
		t.Errorf("Unpack into an existing directory = %v, want ErrExists", err)
	}
	plain, copied := filepath.Join(dir, "plain"), filepath.Join(dir, "copied")
	o := Options{Python: testPython, Installer: "x"}
	if _, err := Install(whl, venvScheme(plain), o); err != nil {
		t.Fatal(err)
	}
	o.Unpacked = cache
	if _, err := Install(whl, venvScheme(copied), o); err != nil {
		t.Fatal(err)
	}
	if a, b := snapshot(t, plain), snapshot(t, copied); a != b {
		t.Errorf("install from the unpacked tree differs from plain install:\n%s\n---\n%s", a, b)
	}
	cli := filepath.Join(cache, unpackedName(t, "demo/cli.py"))
	installed := filepath.Join(venvScheme(copied).Purelib, "demo/cli.py")
	src, _ := os.Stat(cli)
	dst, _ := os.Stat(installed)
	if src == nil || dst == nil || os.SameFile(src, dst) {
		t.Fatalf("demo/cli.py shares its inode with the unpacked copy %s (or is missing)", cli)
	}
	good, err := os.ReadFile(installed)
	if err != nil {
		t.Fatal(err)
	}

	// A byte flipped in the tree after the install leaves the installed
	// file as it was, and the next install from the tree refuses it and
	// leaves nothing.
	flipByte(t, cli)
	if got, _ := os.ReadFile(installed); !bytes.Equal(got, good) {
		t.Errorf("a byte flipped in the unpacked tree changed the installed file: %q, want %q", got, good)
	}
	other := filepath.Join(dir, "other")
	_, err = Install(whl, venvScheme(other), o)
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), cli) {
		t.Errorf("Install from a damaged unpacked tree = %v, want ErrDamaged naming %s", err, cli)
	}
	if _, err := os.Stat(other); err == nil {
		t.Errorf("failed install left %q behind:\n%s", other, snapshot(t, other))
	}
	// A missing file is damage too.
	if err := os.Remove(cli); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(whl, venvScheme(other), o); !errors.Is(err, ErrDamaged) {
		t.Errorf("Install from an unpacked tree missing a file = %v, want ErrDamaged", err)
	}
	o.Unpacked = filepath.Join(dir, "cache")
	if _, err := Install(whl, venvScheme(other), o); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "does not hold this wheel") {
		t.Errorf("Install from the wrong unpacked tree = %v, want ErrDamaged saying so", err)
	}
}

// flipByte inverts the first byte of the file at p, whatever its mode.
func flipByte(t *testing.T, p string) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil || len(data) == 0 {
		t.Fatalf("read %s: %v (%d bytes)", p, err, len(data))
	}
	data[0] ^= 0xff
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestInstallUnpackTo installs while unpacking into a cache: the venv is
// what a plain install makes, the cache what Unpack makes, the two share
// no inode, and Placed hears of every member's destination.
func TestInstallUnpackTo(t *testing.T) {
	dir := t.TempDir()
	whl := demoWheel().build(t, dir)
	plain, onePass := filepath.Join(dir, "plain"), filepath.Join(dir, "one-pass")
	unpacked, cache := filepath.Join(dir, "unpacked"), filepath.Join(dir, "cache")
	o := Options{Python: testPython, Installer: "x"}
	if _, err := Install(whl, venvScheme(plain), o); err != nil {
		t.Fatal(err)
	}
	if _, err := Unpack(whl, unpacked, Options{}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var placed []string
	o.UnpackTo = cache
	o.Placed = func(p string) {
		mu.Lock()
		defer mu.Unlock()
		rel, _ := filepath.Rel(onePass, p)
		placed = append(placed, filepath.ToSlash(rel))
	}
	res, err := Install(whl, venvScheme(onePass), o)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := snapshot(t, plain), snapshot(t, onePass); a != b {
		t.Errorf("install while unpacking differs from a plain install:\n%s\n---\n%s", a, b)
	}
	if a, b := snapshot(t, unpacked), snapshot(t, cache); a != b {
		t.Errorf("the cache differs from Unpack's tree:\n%s\n---\n%s", a, b)
	}
	src, _ := os.Stat(filepath.Join(cache, unpackedName(t, "demo/cli.py")))
	dst, _ := os.Stat(filepath.Join(venvScheme(onePass).Purelib, "demo/cli.py"))
	if src == nil || dst == nil || os.SameFile(src, dst) {
		t.Errorf("demo/cli.py shares its inode with its unpacked copy (or is missing)")
	}
	sort.Strings(placed)
	// Every member but RECORD: not the files Install writes itself.
	generated := []string{"bin/demo", "bin/demo-gui", "lib/python3.11/site-packages/demo-1.0.dist-info/INSTALLER", "lib/python3.11/site-packages/demo-1.0.dist-info/RECORD"}
	var want []string
	for _, f := range res.Files {
		if !slices.Contains(generated, f) {
			want = append(want, f)
		}
	}
	if !slices.Equal(placed, want) {
		t.Errorf("Placed was called with\n%q\nwant\n%q", placed, want)
	}

	// The cache now exists: a second one-pass install refuses to reuse it
	// silently, and both options at once are refused.
	if _, err := Install(whl, venvScheme(filepath.Join(dir, "again")), o); !errors.Is(err, ErrExists) {
		t.Errorf("Install with an existing UnpackTo = %v, want ErrExists", err)
	}
	o.Unpacked = cache
	if _, err := Install(whl, venvScheme(filepath.Join(dir, "both")), o); err == nil || !strings.Contains(err.Error(), "give one") {
		t.Errorf("Install with Unpacked and UnpackTo = %v, want an error saying to give one", err)
	}
}

// unpackedName is where Unpack stores the demo wheel's member name.
func unpackedName(t *testing.T, name string) string {
	t.Helper()
	for _, f := range demoWheel().files {
		if f.name == name {
			_, digest, err := parseHash(recordRow(f).Hash)
			if err != nil {
				t.Fatal(err)
			}
			if f.mode&0o111 != 0 {
				return fmt.Sprintf("sha256-%x-x", digest)
			}
			return fmt.Sprintf("sha256-%x", digest)
		}
	}
	t.Fatalf("the demo wheel has no member %q", name)
	return ""
}

// TestUnpackFlat wants one flat directory: a file per distinct content
// and executable bit, RECORD by name, and no subdirectories, and an
// install from it that matches a plain one.
func TestUnpackFlat(t *testing.T) {
	dir := t.TempDir()
	spec := demoWheel()
	spec.files = append(spec.files,
		zfile{name: "demo/same.py", body: "X = 1\n"},              // as demo_extra.py
		zfile{name: "demo/same.sh", body: "X = 1\n", mode: 0o755}, // same content, executable
	)
	whl := spec.build(t, dir)
	cache := filepath.Join(dir, "cache")
	res, err := Unpack(whl, cache, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			t.Errorf("Unpack made directory %q, want a flat tree", e.Name())
		}
		names = append(names, e.Name())
	}
	// WHEEL and RECORD besides the members; two share content and mode.
	members := 0
	for _, f := range spec.files {
		if !strings.HasSuffix(f.name, "/") {
			members++
		}
	}
	if want := members + 2 - 1; len(names) != want {
		t.Errorf("Unpack wrote %d files %q, want %d", len(names), names, want)
	}
	if len(res.Files) != members+2 {
		t.Errorf("Unpack reported %d members, want %d", len(res.Files), members+2)
	}
	if !slices.Contains(names, "RECORD") {
		t.Errorf("Unpack wrote %q, want RECORD among them", names)
	}
	x, err := os.Stat(filepath.Join(cache, unpackedName(t, "demo/tool.sh")))
	if err != nil || x.Mode().Perm() != 0o755 {
		t.Errorf("executable member unpacked as %v (%v), want mode 0755", x, err)
	}
	plain, linked := filepath.Join(dir, "plain"), filepath.Join(dir, "linked")
	o := Options{Python: testPython, Installer: "x"}
	if _, err := Install(whl, venvScheme(plain), o); err != nil {
		t.Fatal(err)
	}
	o.Unpacked = cache
	if _, err := Install(whl, venvScheme(linked), o); err != nil {
		t.Fatal(err)
	}
	if a, b := snapshot(t, plain), snapshot(t, linked); a != b {
		t.Errorf("install from the flat tree differs from a plain install:\n%s\n---\n%s", a, b)
	}
}

func TestUnpackRefusesHostile(t *testing.T) {
	dir := t.TempDir()
	spec := demoWheel()
	spec.record = func(rows []recordEntry) []recordEntry {
		rows[len(rows)-2].Hash = formatHash("sha256", make([]byte, 32))
		return rows
	}
	whl := spec.build(t, dir)
	cache := filepath.Join(dir, "cache")
	os.Mkdir(cache, 0o755)
	if _, err := Unpack(whl, filepath.Join(cache, "demo"), Options{}); !errors.Is(err, ErrRecord) {
		t.Errorf("Unpack(bad hash) = %v, want ErrRecord", err)
	}
	if ents, _ := os.ReadDir(cache); len(ents) != 0 {
		t.Errorf("Unpack(bad hash) left %d entries in %q", len(ents), cache)
	}
}

// TestExistingDirsKept checks that directories present before a failed
// install, like bin/ and a shared namespace package, survive it.
func TestExistingDirsKept(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "venv")
	s := venvScheme(root)
	for _, d := range []string{s.Scripts, filepath.Join(s.Purelib, "demo")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	spec := demoWheel()
	spec.files = append(spec.files, zfile{name: "zzz/late.py", body: "x", headerSize: 1})
	spec.files[len(spec.files)-1].body = "xx" // longer than declared
	whl := spec.build(t, dir)
	before := snapshot(t, root)
	_, err := Install(whl, s, Options{Python: testPython})
	if !errors.Is(err, ErrRecord) {
		t.Fatalf("Install(member longer than declared) = %v, want ErrRecord", err)
	}
	if after := snapshot(t, root); after != before {
		t.Errorf("tree changed by a failed install:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
