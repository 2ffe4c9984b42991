package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestWrite replaces a file whole, with the mode asked for, and leaves no
// temporary file behind.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.toml")
	for _, c := range []struct {
		data string
		mode os.FileMode
	}{{"first\n", 0o644}, {"second\n", 0o600}} {
		if err := Write(p, []byte(c.data), c.mode); err != nil {
			t.Fatalf("Write(%q) = %v, want nil", c.data, err)
		}
		got, err := os.ReadFile(p)
		fi, _ := os.Stat(p)
		if err != nil || string(got) != c.data || fi.Mode().Perm() != c.mode {
			t.Errorf("after Write(%q, %v): %q %v, %v; want the new content and mode", c.data, c.mode, got, fi.Mode(), err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d entries after two writes, want only f.toml", len(ents))
	}
}

// TestWriteFailureLeavesNothing keeps what was at path, and removes the
// temporary file, when the rename cannot happen.
func TestWriteFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub")
	if err := os.MkdirAll(filepath.Join(p, "keep"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, []byte("new"), 0o644); err == nil {
		t.Fatal("Write over a non-empty directory = nil, want an error")
	}
	if fi, err := os.Stat(filepath.Join(p, "keep")); err != nil || !fi.IsDir() {
		t.Errorf("the directory at path changed after a failed write: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%d entries beside path after a failed write, want no temporary file left", len(ents))
	}
}

// TestWriteSteps: the steps come in order; until the rename, path holds
// the old content and a temporary file named for this process exists.
func TestWriteSteps(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "settings.json")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	var steps []Step
	err := WriteSteps(p, []byte("new"), 0o644, func(s Step) {
		steps = append(steps, s)
		got, _ := os.ReadFile(p)
		want := "old"
		if s == Renamed {
			want = "new"
		}
		if string(got) != want {
			t.Errorf("at %s, path holds %q, want %q", s, got, want)
		}
		temps, _ := filepath.Glob(filepath.Join(dir, ".settings.json.tmp-*"))
		if (len(temps) == 1) != (s != Renamed) {
			t.Errorf("at %s, temporary files %q", s, temps)
		}
		for _, tmp := range temps {
			if pid, ok := TempPID(filepath.Base(tmp)); !ok || pid != os.Getpid() {
				t.Errorf("TempPID(%q) = %d, %v; want this process, %d", filepath.Base(tmp), pid, ok, os.Getpid())
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(steps); got != "[temp-created temp-written renamed]" {
		t.Errorf("steps = %s", got)
	}
	for _, name := range []string{"settings.json", ".settings.json.tmp-", ".x.tmp-12a-3", "x.tmp-12-3", ".x.tmp--3"} {
		if pid, ok := TempPID(name); ok {
			t.Errorf("TempPID(%q) = %d, true; want no process id", name, pid)
		}
	}
}
