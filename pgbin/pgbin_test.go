package pgbin

import (
	"os"
	"path/filepath"
	"testing"
)

// TestFindPath: a program no PostgreSQL version installs is found on the
// PATH, and one that is nowhere is reported missing.
func TestFindPath(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "bitpoll-pgbin-test-tool")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	if got, ok := Find("bitpoll-pgbin-test-tool"); !ok || got != prog {
		t.Errorf("Find(on the PATH) = %q, %v; want %q, true", got, ok, prog)
	}
	if got, ok := Find("bitpoll-pgbin-no-such-tool"); ok {
		t.Errorf("Find(missing) = %q, true; want false", got)
	}
}
