package secretkey

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestDjango(t *testing.T) {
	a, err := Django()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Django()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{a, b} {
		if len(k) != DjangoLen || strings.Trim(k, DjangoAlphabet) != "" {
			t.Errorf("Django() = %q (%d characters), want %d characters of %q", k, len(k), DjangoLen, DjangoAlphabet)
		}
	}
	if a == b {
		t.Errorf("Django() gave %q twice, want a new key each call", a)
	}
}

func TestFernet(t *testing.T) {
	a, err := Fernet()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Fernet()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{a, b} {
		if raw, err := base64.URLEncoding.DecodeString(k); err != nil || len(raw) != 32 {
			t.Errorf("Fernet() = %q: %d bytes, %v; want the URL-safe base64 of 32 bytes", k, len(raw), err)
		}
	}
	if a == b {
		t.Errorf("Fernet() gave %q twice, want a new key each call", a)
	}
}
