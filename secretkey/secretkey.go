// Package secretkey makes the values of the secrets Django reads: a
// SECRET_KEY and a Fernet key. It writes no file; service.SecretWriter
// places them, and install makes throwaway ones for a build.
package secretkey

import (
	"crypto/rand"
	"encoding/base64"
	"io"
	"math/big"
)

// The format of a generated SECRET_KEY, Django's own for new projects:
// DjangoLen characters of DjangoAlphabet. The NixOS module generates the
// same (nix/module.nix, bitpoll-secrets.service).
const (
	DjangoAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789!@#%^&*(-_=+)"
	DjangoLen      = 50
)

// Django is a new SECRET_KEY: DjangoLen characters from DjangoAlphabet.
func Django() (string, error) {
	out := make([]byte, DjangoLen)
	for i := range out {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(DjangoAlphabet))))
		if err != nil {
			return "", err
		}
		out[i] = DjangoAlphabet[n.Int64()]
	}
	return string(out), nil
}

// Fernet is a new key as django-encrypted-model-fields expects it: 32
// random bytes, URL-safe base64.
func Fernet() (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		return "", err
	}
	return base64.URLEncoding.EncodeToString(b), nil
}
