package service

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/shim"
	"github.com/bitpoll-install/bitpoll-install/store"
)

// TestSecretKeyFile: the admin's key is used when there is none, accepted
// again when equal, and a different one never replaces the existing key.
func TestSecretKeyFile(t *testing.T) {
	root := t.TempDir()
	p := &Plan{o: Options{Layout: store.Layout{Root: root}}}
	key := strings.Repeat("k", 60)
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.o.SecretKeyFile = file
	if err := p.writeSecrets(); err != nil {
		t.Fatalf("writeSecrets with a new key: %v", err)
	}
	dir := p.o.Layout.SecretsDir()
	got, err := os.ReadFile(filepath.Join(dir, shim.SecretKeyFile))
	if err != nil || string(got) != key {
		t.Fatalf("secret_key = %q (%v), want the admin's key", got, err)
	}
	for _, name := range []string{shim.SecretKeyFile, shim.FieldEncryptionKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	if fi, err := os.Stat(dir); err != nil {
		t.Errorf("secrets dir: %v", err)
	} else if fi.Mode().Perm() != 0o700 {
		t.Errorf("secrets dir has mode %v, want 0700", fi.Mode().Perm())
	}
	if err := p.writeSecrets(); err != nil {
		t.Errorf("writeSecrets with the same key again: %v, want success", err)
	}

	other := filepath.Join(t.TempDir(), "other")
	if err := os.WriteFile(other, []byte(strings.Repeat("o", 60)), 0o600); err != nil {
		t.Fatal(err)
	}
	p.o.SecretKeyFile = other
	if err := p.writeSecrets(); err == nil || !strings.Contains(err.Error(), "never overwritten") {
		t.Errorf("writeSecrets with a different key = %v, want a refusal", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, shim.SecretKeyFile)); string(got) != key {
		t.Errorf("secret_key became %q, want it kept", got)
	}
}

func TestReadSecretKeyRefusesBadKeys(t *testing.T) {
	for _, c := range []struct{ name, content string }{
		{"short", "tooshort\n"},
		{"two lines", strings.Repeat("a", 60) + "\n" + strings.Repeat("b", 60) + "\n"},
		{"spaces", " " + strings.Repeat("a", 60) + " \n"},
	} {
		path := filepath.Join(t.TempDir(), "key")
		if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := readSecretKey(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("readSecretKey(%s) = %v, want an error naming the file", c.name, err)
		}
	}
}

// TestSecretKeyFileOverEmpty: an empty secret_key, left by an interrupted
// older version, is no key anyone used: the admin's key replaces it, and
// the log says so.
func TestSecretKeyFileOverEmpty(t *testing.T) {
	var logged []string
	p := &Plan{o: Options{Layout: store.Layout{Root: t.TempDir()}, Log: func(m string) { logged = append(logged, m) }}}
	dir := p.o.Layout.SecretsDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, shim.SecretKeyFile)
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	key := strings.Repeat("k", 60)
	p.o.SecretKeyFile = filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p.o.SecretKeyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.writeSecrets(); err != nil {
		t.Fatalf("writeSecrets over an empty secret_key: %v", err)
	}
	if got, _ := os.ReadFile(path); string(got) != key {
		t.Errorf("secret_key = %q, want the admin's key", got)
	}
	if len(logged) != 1 || !strings.Contains(logged[0], path+" was empty") {
		t.Errorf("writeSecrets said %q, want one message that %s was empty", logged, path)
	}
}
