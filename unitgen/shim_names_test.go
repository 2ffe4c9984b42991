package unitgen_test

import (
	"slices"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/shim"
	"github.com/bitpoll-install/bitpoll-install/unitgen"
)

// TestCredentialNamesMatchShim keeps the credential names of the units and
// the files the shim reads in step; unitgen does not import shim.
func TestCredentialNamesMatchShim(t *testing.T) {
	got := slices.Concat(unitgen.RequiredCredentials, unitgen.OptionalCredentials)
	want := []string{shim.SecretKeyFile, shim.FieldEncryptionKeyFile, shim.DBPasswordFile, shim.EmailPasswordFile}
	if !slices.Equal(got, want) {
		t.Errorf("unitgen credentials = %q, want the shim's %q", got, want)
	}
}
