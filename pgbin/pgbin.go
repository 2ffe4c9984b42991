// Package pgbin finds PostgreSQL's programs, for the snapshots of service
// and the throwaway clusters of the tests.
package pgbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// Find returns the path of the PostgreSQL program name: the newest major
// version's under /usr/lib/postgresql (Debian installs each version there,
// and pg_dump reads servers of its own version and older, never newer),
// else the one on the PATH. It returns false when there is none.
func Find(name string) (string, bool) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	best, bestV := "", -1
	for _, d := range dirs {
		v, err := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		if err != nil || v <= bestV {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, name)); err == nil {
			best, bestV = filepath.Join(d, name), v
		}
	}
	if best != "" {
		return best, true
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	return "", false
}
