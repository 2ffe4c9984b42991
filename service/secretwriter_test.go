package service

import (
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/shim"
)

// Environment of the secrets helper process.
const (
	envSecretsHelper = "BITPOLL_TEST_SECRETS_HELPER" // the directory to write
	envSecretsKillAt = "BITPOLL_TEST_SECRETS_KILL_AT"
	envSecretsName   = "BITPOLL_TEST_SECRETS_KILL_NAME"
)

// TestSecretsHelper writes the secrets of a directory and SIGKILLs itself
// at one step of writing one of them.
func TestSecretsHelper(t *testing.T) {
	dir := os.Getenv(envSecretsHelper)
	if dir == "" {
		t.Skip("helper for TestSecretsKilled; runs only when re-executed by it")
	}
	step, name := SecretStep(os.Getenv(envSecretsKillAt)), os.Getenv(envSecretsName)
	err := SecretWriter{Dir: dir, At: func(s SecretStep, p string) {
		if s == step && strings.Contains(filepath.Base(p), name) {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}}.Write()
	if err != nil {
		t.Fatal(err)
	}
}

// TestSecretsKilled kills a writer at each step of writing each secret.
// The directory then never holds a secret of the wrong content, and the
// next run leaves both secrets whole, keeps one that was already placed,
// and removes the temporary files.
func TestSecretsKilled(t *testing.T) {
	for _, name := range []string{shim.SecretKeyFile, shim.FieldEncryptionKeyFile} {
		for _, step := range []SecretStep{SecretTempCreated, SecretTempWritten, SecretPlaced} {
			t.Run(name+"/"+string(step), func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "secrets")
				cmd := exec.Command(os.Args[0], "-test.run=^TestSecretsHelper$")
				cmd.Env = append(os.Environ(), envSecretsHelper+"="+dir, envSecretsKillAt+"="+string(step), envSecretsName+"="+name)
				out, err := cmd.CombinedOutput()
				if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
					t.Fatalf("helper did not die by SIGKILL at %s: %v\n%s", step, err, out)
				}
				// Whatever has its name is whole.
				for _, n := range []string{shim.SecretKeyFile, shim.FieldEncryptionKeyFile} {
					if data, err := os.ReadFile(filepath.Join(dir, n)); err == nil {
						checkSecret(t, n, data)
					}
				}
				placed, placedErr := os.ReadFile(filepath.Join(dir, name))
				if (step == SecretPlaced) != (placedErr == nil) {
					t.Errorf("after a kill at %s, %s exists: %v", step, name, placedErr == nil)
				}
				var logged []string
				if err := (SecretWriter{Dir: dir, Log: func(m string) { logged = append(logged, m) }}).Write(); err != nil {
					t.Fatalf("rerun: %v", err)
				}
				if len(logged) != 0 {
					t.Errorf("rerun said %q, want nothing: no secret was left unusable", logged)
				}
				for _, n := range []string{shim.SecretKeyFile, shim.FieldEncryptionKeyFile} {
					checkSecret(t, n, readFile(t, filepath.Join(dir, n)))
				}
				if placedErr == nil {
					if got := readFile(t, filepath.Join(dir, name)); string(got) != string(placed) {
						t.Errorf("rerun replaced %s, which was whole", name)
					}
				}
				ents, _ := os.ReadDir(dir)
				if len(ents) != 2 {
					var names []string
					for _, e := range ents {
						names = append(names, e.Name())
					}
					t.Errorf("the secrets directory holds %q after the rerun, want only the two secrets", names)
				}
			})
		}
	}
}

// TestSecretsUnusableReplaced: an empty secret, as an interrupted older
// version left it, and a cut Fernet key are replaced and reported; a
// secret of the admin's, however short, is kept.
func TestSecretsUnusableReplaced(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(shim.SecretKeyFile, "")
	write(shim.FieldEncryptionKeyFile, "dGhpcyBpcyBjdXQ")
	var logged []string
	if err := (SecretWriter{Dir: dir, Log: func(m string) { logged = append(logged, m) }}).Write(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{shim.SecretKeyFile, shim.FieldEncryptionKeyFile} {
		checkSecret(t, n, readFile(t, filepath.Join(dir, n)))
	}
	want := []string{
		"secret " + filepath.Join(dir, shim.SecretKeyFile) + " is empty, so nothing can have used it",
		"secret " + filepath.Join(dir, shim.FieldEncryptionKeyFile) + " holds 15 characters that are not a Fernet key, so nothing can have used it",
	}
	if len(logged) != len(want) {
		t.Fatalf("Write said %q, want %d messages", logged, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(logged[i], w) || !strings.Contains(logged[i], "replaced it with a new one") {
			t.Errorf("message %d = %q, want it to start %q and say it was replaced", i, logged[i], w)
		}
	}

	// A short key of the admin's may be in use: kept, silently.
	write(shim.SecretKeyFile, "short-but-used\n")
	logged = nil
	if err := (SecretWriter{Dir: dir, Log: func(m string) { logged = append(logged, m) }}).Write(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, shim.SecretKeyFile)); string(got) != "short-but-used\n" || len(logged) != 0 {
		t.Errorf("a short, non-empty secret_key became %q (said %q), want it kept silently", got, logged)
	}
}

// checkSecret fails unless data is a whole secret as WriteSecrets makes it.
func checkSecret(t *testing.T, name string, data []byte) {
	t.Helper()
	switch name {
	case shim.SecretKeyFile:
		if len(data) != 50 {
			t.Errorf("%s has %d bytes, want 50", name, len(data))
		}
	case shim.FieldEncryptionKeyFile:
		if b, err := base64.URLEncoding.DecodeString(string(data)); err != nil || len(b) != 32 {
			t.Errorf("%s is not a Fernet key (%d bytes)", name, len(data))
		}
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
