package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// newStore opens a store under a fresh root. The cleanup restores write
// bits first, so the temp dir can be removed without root.
func newStore(t *testing.T) *Store {
	t.Helper()
	root := t.TempDir()
	t.Cleanup(func() { _ = removeTree(root) })
	s, err := Open(Layout{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// writeFiles writes files (name → content) under dir; names ending in
// ".sh" are executable.
func writeFiles(dir string, files map[string]string) error {
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			return err
		}
	}
	return nil
}

// mustBuild builds a store path holding files and fails the test on error.
func mustBuild(t *testing.T, s *Store, key, name, version string, files map[string]string) string {
	t.Helper()
	p, _, err := s.Build(context.Background(), key, name, version, func(dir string) error {
		return writeFiles(dir, files)
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// leftovers lists partial builds and temporary current links under s.
func leftovers(t *testing.T, s *Store) []string {
	t.Helper()
	a, err := filepath.Glob(filepath.Join(s.Layout().StoreDir(), "*"+partialInfix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := filepath.Glob(s.Layout().Current() + ".tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	return append(a, b...)
}
