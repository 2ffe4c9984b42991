package nix

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite nix/vendor-hash with the recomputed vendorHash")

// TestVendorHash recomputes buildGoModule's vendorHash the way Nix does:
// `go mod vendor` of the module, then the NAR hash of vendor/. The copy
// holds the same Go files and module files as bitpoll-install.nix's source.
// Run with -update to rewrite nix/vendor-hash.
func TestVendorHash(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping go mod vendor in -short mode")
	}
	nixBin, err := exec.LookPath("nix")
	if err != nil {
		testenv.Skip(t, "nix not found: install Nix (Debian: apt-get install nix-bin) to check nix/vendor-hash")
	}
	root := repoRoot(t)
	out := filepath.Join(t.TempDir(), "vendor")
	cmd := exec.Command("go", "mod", "vendor", "-o", out)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go mod vendor: %v\n%s", err, msg)
	}
	hash := exec.Command(nixBin, "--extra-experimental-features", "nix-command", "hash", "path", out)
	hash.Env = isolatedEnv(t.TempDir())
	var stderr bytes.Buffer
	hash.Stderr = &stderr
	sum, err := hash.Output()
	if err != nil {
		t.Fatalf("nix hash path: %v: %s", err, stderr.Bytes())
	}
	want := strings.TrimSpace(string(sum))
	file := filepath.Join(root, "nix", "vendor-hash")
	have, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(have)); got != want {
		if *update {
			if err := os.WriteFile(file, []byte(want+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("nix/vendor-hash: %s -> %s", got, want)
			return
		}
		t.Errorf("nix/vendor-hash = %s, but go.mod and go.sum vendor to %s: run go test ./nix -run VendorHash -update", got, want)
	}
}
