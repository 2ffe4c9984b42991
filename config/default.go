package config

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// DefaultFile is the commented config that install writes when there is
// none: it parses to Default, and says what each key does.
//
//go:embed default.toml
var DefaultFile []byte

// WriteDefault writes DefaultFile to path (0644: it holds no secrets),
// creating its directory. It never replaces an existing file, and reports
// whether it wrote one.
func WriteDefault(path string) (bool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, fmt.Errorf("write default config: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("write default config: %w", err)
	}
	_, werr := f.Write(DefaultFile)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(path)
		return false, fmt.Errorf("write default config %s: %w", path, err)
	}
	return true, nil
}
