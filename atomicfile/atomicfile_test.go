package atomicfile

import (
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
