package service

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bitpoll-install/bitpoll-install/shim"
)

// readSecretKey reads an admin's SECRET_KEY file: one line of at least 50
// characters, as Django's deploy check asks.
func readSecretKey(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--secret-key-file: %w", err)
	}
	key := bytes.TrimRight(data, "\n")
	switch {
	case bytes.ContainsAny(key, "\n\r\x00"):
		return nil, fmt.Errorf("--secret-key-file %s: holds more than one line; give the key alone on one line", path)
	case len(key) < 50 || len(strings.TrimSpace(string(key))) != len(key):
		return nil, fmt.Errorf("--secret-key-file %s: the key has %d characters; Django wants 50 or more without surrounding spaces (python3 -c 'import secrets; print(secrets.token_urlsafe(50))')", path, len(key))
	}
	return key, nil
}

// writeSecrets puts the admin's SECRET_KEY in place, then generates the
// missing ones. A secret is never overwritten: the field encryption key
// decrypts data already stored, and a new SECRET_KEY ends every session.
func (p *Plan) writeSecrets() error {
	dir := p.o.Layout.SecretsDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if p.o.SecretKeyFile != "" {
		key, err := readSecretKey(p.o.SecretKeyFile)
		if err != nil {
			return err
		}
		path := filepath.Join(dir, shim.SecretKeyFile)
		old, err := os.ReadFile(path)
		switch {
		case err == nil && len(bytes.TrimSpace(old)) == 0:
			// Empty: an interrupted write of an older version; nothing
			// can have used it.
			if _, err := writeFileAtomic(path, key, 0o600, p.o.Hooks); err != nil {
				return err
			}
			if p.o.Log != nil {
				p.o.Log(fmt.Sprintf("secret %s was empty, so nothing can have used it: replaced it with the key of --secret-key-file", path))
			}
		case err == nil && !bytes.Equal(bytes.TrimRight(old, "\n"), key):
			return fmt.Errorf("--secret-key-file: %s already holds a different key, and secrets are never overwritten: remove it first if you mean to replace it (every session ends)", path)
		case os.IsNotExist(err):
			if _, err := writeFileAtomic(path, key, 0o600, p.o.Hooks); err != nil {
				return err
			}
		case err != nil:
			return err
		}
	}
	return SecretWriter{Dir: dir, Log: p.o.Log}.Write()
}
