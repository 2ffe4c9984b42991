// Package nix tests the flake and its Nix files: that they parse, that the
// pure lock reader agrees with lockfile's selection, and, with Nix 2.26 and
// a trimmed nixpkgs at hand, that the flake, the package and the NixOS
// module evaluate and agree with the Go side.
//
// Environment:
//
//	BITPOLL_ROOTFS   the Debian trixie tree of scripts/rootfs.sh, whose Nix 2.26 runs here
//	BITPOLL_NIXPKGS  a (bare) git mirror of neg-serg/nixpkgs-slim; its HEAD~1 is exported once
package nix

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitpoll-install/bitpoll-install/fetch"
	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
)

// repoRoot is the module root: the parent of this package.
func repoRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

// cacheDir is where exported trees and the test store live between runs.
func cacheDir(t testing.TB) string {
	t.Helper()
	d, err := os.UserCacheDir()
	if err != nil {
		testenv.Skipf(t, "no cache directory for the Nix test store: %v", err)
	}
	d = filepath.Join(d, "bitpoll-install-test")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// nixInstantiate finds Nix 2.8 or newer's nix-instantiate on the PATH (in CI:
// Debian's nix-bin, installed by scripts/prereqs.sh).
func nixInstantiate(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("nix-instantiate")
	if err != nil {
		testenv.Skip(t, "nix-instantiate not found: install Nix (Debian: apt-get install nix-bin) to run the Nix tests")
	}
	return p
}

// evalJSON evaluates expr with nix-instantiate (no store, no nixpkgs) and
// returns its strict JSON value.
func evalJSON(t testing.TB, expr string, args ...string) ([]byte, error) {
	t.Helper()
	// A file, not --expr: the expressions of the differential tests are
	// longer than an argument may be.
	dir := t.TempDir()
	file := filepath.Join(dir, "expr.nix")
	if err := os.WriteFile(file, []byte(expr), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nixInstantiate(t), append([]string{"--eval", "--strict", "--json", file}, args...)...)
	cmd.Env = isolatedEnv(dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("nix-instantiate: %v: %s", err, stderr.Bytes())
	}
	return out, nil
}

// isolatedEnv is the environment for a Nix process: a throwaway home and XDG
// directories, so that no user config or registry leaks in.
func isolatedEnv(home string) []string {
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"), "XDG_DATA_HOME=" + filepath.Join(home, ".local/share"),
		"XDG_STATE_HOME=" + filepath.Join(home, ".local/state"), "NIX_CONFIG=", "PATH=" + os.Getenv("PATH")}
	return env
}

// nixStr quotes s as a Nix string literal.
func nixStr(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "${", `\${`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// Nix226 runs the nix command of the BITPOLL_ROOTFS tree through that tree's
// own loader, against a private store under the cache directory.
type Nix226 struct {
	loader, libs, bin string
	store, home       string
	nixpkgs           string // flake ref of the exported nixpkgs
}

var (
	nixOnce sync.Once
	nixVal  *Nix226
	nixErr  error
	nixSkip string
)

// newNix226 sets up Nix 2.26 and the exported nixpkgs once per test binary;
// it skips when either is missing and under -short (the first evaluation
// copies nixpkgs into the store, about 45 s).
func newNix226(t testing.TB) *Nix226 {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping the Nix 2.26 flake tests in -short mode")
	}
	if runtime.GOARCH != "amd64" {
		testenv.Skip(t, "the Nix 2.26 flake tests run the x86_64 rootfs's nix: skipping on "+runtime.GOARCH)
	}
	cache := cacheDir(t)
	nixOnce.Do(func() { nixVal, nixSkip, nixErr = setupNix226(cache) })
	if nixSkip != "" {
		testenv.Skip(t, nixSkip)
	}
	if nixErr != nil {
		t.Fatal(nixErr)
	}
	return nixVal
}

func setupNix226(cache string) (*Nix226, string, error) {
	root := os.Getenv("BITPOLL_ROOTFS")
	if root == "" {
		return nil, "BITPOLL_ROOTFS is unset: set it to the tree scripts/rootfs.sh prints to run the flake tests with its Nix 2.26", nil
	}
	n := &Nix226{
		loader: filepath.Join(root, "lib64/ld-linux-x86-64.so.2"),
		libs:   filepath.Join(root, "usr/lib/x86_64-linux-gnu") + ":" + filepath.Join(root, "lib/x86_64-linux-gnu"),
		bin:    filepath.Join(root, "usr/bin/nix"),
		store:  filepath.Join(cache, "nix-store-2.26"),
		home:   filepath.Join(cache, "nix-home-2.26"),
	}
	for _, p := range []string{n.loader, n.bin} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Sprintf("BITPOLL_ROOTFS=%q has no %s: rebuild it with scripts/rootfs.sh (it installs nix-bin)", root, p), nil
		}
	}
	mirror := os.Getenv("BITPOLL_NIXPKGS")
	if mirror == "" {
		return nil, "BITPOLL_NIXPKGS is unset: set it to a git mirror of neg-serg/nixpkgs-slim to run the flake tests", nil
	}
	if _, err := exec.LookPath("git"); err != nil {
		return nil, "git not found: it exports the nixpkgs mirror for the flake tests", nil
	}
	tree, err := exportNixpkgs(mirror, cache)
	if err != nil {
		return nil, "", err
	}
	wrapper, err := writeNixpkgsWrapper(tree)
	if err != nil {
		return nil, "", err
	}
	n.nixpkgs = "path:" + wrapper
	return n, "", nil
}

// The trimmed nixpkgs lacks hackage-packages.nix, so no Haskell package
// evaluates, and NixOS (its pre-switch checks), writeShellApplication and
// nixfmt all name shellcheck or nixfmt. The wrapper flake puts placeholder
// derivations in their place, in legacyPackages and in every nixosSystem:
// they evaluate but fail if built, and nothing is built here.
//
// The NixOS test framework (checks.*.vm) needs more than the trim left:
//   - packages its by-name whitelist dropped, all of them only build inputs
//     that --no-build never realises: qemu's canokey-qemu, libu2f-emu and
//     spice; the test driver's vhost-device-vsock; and ty, the type checker
//     the driver runs on the test script (top level and in pythonPackages).
//     They get placeholders too.
//   - three modules its module-list.nix leaves out though the files are in
//     the tree, and which qemu-vm.nix and test-instrumentation.nix set
//     options of: connman (turned off in VMs), the QEMU guest agent, and
//     the overlay file systems the VM's writable store is made of. Every
//     test node imports the tree's own files, nothing written anew.
//
// The flake stays the one users run on full nixpkgs: the stand-ins live
// only in this test input.
const nixpkgsWrapper = `{
  inputs.nixpkgs.url = "git+file://@TREE@";
  outputs =
    { nixpkgs, ... }:
    let
      placeholders = final: prev:
        let
          stub = name: final.runCommand "${name}-placeholder" {
            pname = name;
            version = "0";
            meta.mainProgram = name;
          } "echo '${name}: a placeholder of the test nixpkgs' >&2; exit 1";
        in
        {
          # No compiler: writeShellApplication then skips its shellcheck.
          shellcheck = stub "shellcheck" // { compiler.bootstrapAvailable = false; };
          shellcheck-minimal = stub "shellcheck" // { compiler.bootstrapAvailable = false; };
          nixfmt = stub "nixfmt";
          nixfmt-tree = stub "treefmt";
          # For the NixOS test framework: qemu's, then the driver's inputs.
          canokey-qemu = stub "canokey-qemu";
          libu2f-emu = stub "libu2f-emu";
          spice = stub "spice";
          vhost-device-vsock = stub "vhost-device-vsock";
          ty = stub "ty";
          pythonPackagesExtensions = prev.pythonPackagesExtensions ++ [ (pyFinal: pyPrev: { ty = stub "ty"; }) ];
          testers = prev.testers // {
            runNixOSTest = test: prev.testers.runNixOSTest {
              imports = [ test ];
              defaults.imports = testNodeModules;
            };
          };
        };
      # Modules of the tree that its module-list.nix omits.
      testNodeModules = map (m: "${nixpkgs}/nixos/modules/${m}") [
        "services/networking/connman.nix"
        "virtualisation/qemu-guest-agent.nix"
        "tasks/filesystems/overlayfs.nix"
      ];
    in
    {
      lib = nixpkgs.lib.extend (final: prev: {
        nixosSystem = args: prev.nixosSystem (args // {
          modules = args.modules ++ [ { nixpkgs.overlays = [ placeholders ]; } ];
        });
      });
      legacyPackages = nixpkgs.lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (system:
        import nixpkgs { inherit system; overlays = [ placeholders ]; });
    };
}
`

func writeNixpkgsWrapper(tree string) (string, error) {
	dir := tree + "-wrapper"
	data := []byte(strings.ReplaceAll(nixpkgsWrapper, "@TREE@", tree))
	if old, err := os.ReadFile(filepath.Join(dir, "flake.nix")); err == nil && bytes.Equal(old, data) {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("write nixpkgs wrapper: %w", err)
	}
	_ = os.Remove(filepath.Join(dir, "flake.lock"))
	if err := os.WriteFile(filepath.Join(dir, "flake.nix"), data, 0o644); err != nil {
		return "", fmt.Errorf("write nixpkgs wrapper: %w", err)
	}
	return dir, nil
}

// Run runs nix with args in dir and returns its stdout; errors carry stderr.
func (n *Nix226) Run(ctx context.Context, dir string, args ...string) ([]byte, error) {
	out, _, err := n.RunLog(ctx, dir, args...)
	return out, err
}

// RunLog is Run that also returns stderr, where nix logs its progress.
func (n *Nix226) RunLog(ctx context.Context, dir string, args ...string) (stdout, stderr []byte, err error) {
	full := append([]string{"--library-path", n.libs, n.bin,
		"--extra-experimental-features", "nix-command flakes",
		"--store", n.store, "--option", "substituters", "", "--option", "sandbox", "false",
		"--option", "warn-dirty", "false"}, args...)
	cmd := exec.CommandContext(ctx, n.loader, full...)
	cmd.Dir = dir
	cmd.Env = isolatedEnv(n.home)
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	out, err := cmd.Output()
	if err != nil {
		return nil, errBuf.Bytes(), fmt.Errorf("nix %s: %v: %s", strings.Join(args, " "), err, lastLines(errBuf.String(), 30))
	}
	return out, errBuf.Bytes(), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// exportNixpkgs writes HEAD~1 of the mirror as a one-commit git repository
// under cache, once: built aside and renamed, so a half-written tree is
// never used. The mirror lacks a few large generated blobs; they are left
// out, which the evaluation does not need.
func exportNixpkgs(mirror, cache string) (string, error) {
	rev, err := gitOut(mirror, "rev-parse", "HEAD~1")
	if err != nil {
		return "", fmt.Errorf("export nixpkgs: %w", err)
	}
	rev = strings.TrimSpace(rev)
	dir := filepath.Join(cache, "nixpkgs-"+rev[:12])
	if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
		return dir, nil
	}
	partial := dir + ".partial"
	if err := os.RemoveAll(partial); err != nil {
		return "", err
	}
	if _, err := fetch.ExportGitTree(context.Background(), mirror, rev, partial); err != nil {
		return "", fmt.Errorf("export nixpkgs: %w", err)
	}
	for _, args := range [][]string{
		{"init", "-q"}, {"add", "-A"},
		{"-c", "user.name=test", "-c", "user.email=test@localhost", "commit", "-q", "-m", "nixpkgs-slim " + rev},
	} {
		if _, err := gitOut(partial, args...); err != nil {
			return "", fmt.Errorf("export nixpkgs: %w", err)
		}
	}
	if err := os.Rename(partial, dir); err != nil {
		return "", fmt.Errorf("export nixpkgs: %w", err)
	}
	return dir, nil
}

func gitOut(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return string(out), nil
}

// withTimeout is a context for one Nix command.
func withTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
