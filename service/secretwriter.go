package service

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/bitpoll-install/bitpoll-install/atomicfile"
	"github.com/bitpoll-install/bitpoll-install/secretkey"
	"github.com/bitpoll-install/bitpoll-install/shim"
)

// WriteSecrets generates the secrets missing from dir (0700), each 0600;
// see SecretWriter.
func WriteSecrets(dir string) error { return SecretWriter{Dir: dir}.Write() }

// SecretWriter generates the secrets missing from Dir (0700), each 0600.
// A secret that exists is never overwritten: the field encryption key
// decrypts data already stored, and a new SECRET_KEY ends every session.
// The one exception is a secret nothing can have used: an empty file, or
// a field encryption key that is not a Fernet key (a cut-short write by
// an older version). Such a file is replaced, and Log is told.
//
// Each secret is written to a temporary file in Dir, synced, and then
// linked to its name, which appears only with its whole content; a kill
// at any point leaves the old state or the new, and at most a temporary
// file, which the next Write removes.
type SecretWriter struct {
	Dir string
	Log func(msg string) // nil: say nothing
	// At is called at each step of writing one secret, with the path the
	// step concerns; tests kill the process there. Nil in production.
	At func(step SecretStep, path string)
}

// SecretStep names a point in writing one secret.
type SecretStep string

const (
	SecretTempCreated SecretStep = "temp-created" // the empty temporary file exists
	SecretTempWritten SecretStep = "temp-written" // it holds the secret and is synced
	SecretPlaced      SecretStep = "placed"       // the secret has its name; the directory is not yet synced
)

// secretTempInfix marks the temporary files of SecretWriter.
const secretTempInfix = ".tmp-"

// Write generates what is missing; see SecretWriter.
func (w SecretWriter) Write() error {
	dir := w.Dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create secrets directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("create secrets directory: %w", err)
	}
	// What a killed writer left: never a secret, only its temporary file.
	stale, _ := filepath.Glob(filepath.Join(dir, ".*"+secretTempInfix+"*"))
	for _, p := range stale {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s, left by an interrupted run: %w", p, err)
		}
	}
	gen := map[string]func() (string, error){
		shim.SecretKeyFile:          secretkey.Django,
		shim.FieldEncryptionKeyFile: secretkey.Fernet,
	}
	for _, name := range []string{shim.SecretKeyFile, shim.FieldEncryptionKeyFile} {
		path := filepath.Join(dir, name)
		replace := false
		if old, err := os.ReadFile(path); err == nil {
			why := unusableSecret(name, old)
			if why == "" {
				continue
			}
			replace = true
			if w.Log != nil {
				w.Log(fmt.Sprintf("secret %s %s, so nothing can have used it (an earlier run was interrupted while writing it): replaced it with a new one", path, why))
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("read secret %s: %w", path, err)
		}
		v, err := gen[name]()
		if err != nil {
			return err
		}
		if err := w.place(path, []byte(v), replace); err != nil {
			return fmt.Errorf("write secret %s: %w", path, err)
		}
	}
	return nil
}

// place puts data at path through a synced temporary file: by rename when
// replace is set, else by link, which keeps a secret another process
// placed first.
func (w SecretWriter) place(path string, data []byte, replace bool) error {
	at := func(step SecretStep, p string) {
		if w.At != nil {
			w.At(step, p)
		}
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+secretTempInfix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	at(SecretTempCreated, tmp)
	_, werr := f.Write(data)
	if err := errors.Join(werr, f.Chmod(0o600), f.Sync(), f.Close()); err != nil {
		return err
	}
	at(SecretTempWritten, tmp)
	if replace {
		err = os.Rename(tmp, path)
	} else if err = os.Link(tmp, path); errors.Is(err, fs.ErrExist) {
		return nil // another process made it first; keep theirs
	}
	if err != nil {
		return err
	}
	at(SecretPlaced, path)
	return atomicfile.SyncDir(dir)
}

// unusableSecret says why the content of secret file name cannot have
// been used by Django, or "" when it may have been.
func unusableSecret(name string, data []byte) string {
	v := strings.TrimSpace(string(data))
	if v == "" {
		return "is empty"
	}
	if name != shim.FieldEncryptionKeyFile {
		return ""
	}
	// django-encrypted-model-fields takes a comma-separated list of Fernet
	// keys and refuses to start on any other.
	for _, k := range strings.Split(v, ",") {
		if b, err := base64.URLEncoding.DecodeString(strings.TrimSpace(k)); err != nil || len(b) != 32 {
			return fmt.Sprintf("holds %d characters that are not a Fernet key", len(v))
		}
	}
	return ""
}
