package nix

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/treehash"
)

// srcCheck is the package's tree check as the build would run it, and the
// source it would check.
type srcCheck struct {
	Script string `json:"script"`
	Src    string `json:"src"`
}

// runSrcCheck runs the package's preUnpack (its source check) with bash
// and the host's git on the source in the test store, as the build's first
// step would. Nothing here can build, so the script runs outside Nix.
func runSrcCheck(t *testing.T, c srcCheck) (string, error) {
	t.Helper()
	for _, tool := range []string{"bash", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Skipf(t, "%s not found: the source check of the package needs it", tool)
		}
	}
	n := newNix226(t)
	// The test store is a chroot store: its /nix/store lives under n.store.
	src := filepath.Join(n.store, c.Src)
	if _, err := os.Stat(src); err != nil {
		t.Fatalf("the source %s is not in the test store: %v", c.Src, err)
	}
	cmd := exec.Command("bash", "-c", "set -eu\n"+c.Script)
	cmd.Env = append(isolatedEnv(t.TempDir()), "src="+src, "NIX_BUILD_TOP="+t.TempDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

const srcCheckApply = `p: { script = p.preUnpack; src = "${p.src}"; }`

// TestTamperedSourceRefused overrides bitpoll-src with a path: tree that
// is not the locked one (the flake tests' stand-in with a line appended to
// manage.py): evaluation cannot tell, and the build's first step refuses
// it, naming both tree ids.
func TestTamperedSourceRefused(t *testing.T) {
	c := repoCopy(t)
	tampered := filepath.Join(t.TempDir(), "app")
	if err := os.CopyFS(tampered, os.DirFS(c.app)); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(tampered, "manage.py"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("print('not the locked source')\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	tamperedTree, err := treehash.GitTree(tampered)
	if err != nil {
		t.Fatal(err)
	}
	l, err := lockfile.ReadFile(filepath.Join(repoRoot(t), "bitpoll.lock"))
	if err != nil {
		t.Fatal(err)
	}

	out, _, err := flakeApp(t, tampered, "eval", "--json", "FLAKE#packages.x86_64-linux.bitpoll", "--apply", srcCheckApply)
	if err != nil {
		t.Fatalf("evaluating the package with a path: source: %v", err)
	}
	var sc srcCheck
	if err := json.Unmarshal(out, &sc); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	log, err := runSrcCheck(t, sc)
	if err == nil {
		t.Fatalf("the source check took a tampered tree (git tree %s, the lock pins %s); log:\n%s", tamperedTree, l.App.Tree, log)
	}
	for _, want := range []string{"has git tree " + tamperedTree, "pins bitpoll 0.11.0 at tree " + l.App.Tree} {
		if !strings.Contains(log, want) {
			t.Errorf("the source check's message does not say %q:\n%s", want, log)
		}
	}
}

// TestLockedSourceAccepted runs the same check on a source whose tree is
// the one the lock pins: the stand-in app, with a lock that pins its tree.
func TestLockedSourceAccepted(t *testing.T) {
	c := repoCopy(t)
	tree, err := treehash.GitTree(c.app)
	if err != nil {
		t.Fatal(err)
	}
	l, err := lockfile.ReadFile(filepath.Join(repoRoot(t), "bitpoll.lock"))
	if err != nil {
		t.Fatal(err)
	}
	l.App.Tree = tree
	lock := filepath.Join(t.TempDir(), "bitpoll.lock")
	if err := lockfile.WriteFile(lock, l); err != nil {
		t.Fatal(err)
	}
	apply := `p: (` + srcCheckApply + `) (p.override { lockFile = ` + nixStr(lock) + `; })`
	out, _, err := flakeApp(t, c.app, "eval", "--impure", "--json", "FLAKE#packages.x86_64-linux.bitpoll", "--apply", apply)
	if err != nil {
		t.Fatal(err)
	}
	var sc srcCheck
	if err := json.Unmarshal(out, &sc); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	log, err := runSrcCheck(t, sc)
	if err != nil || !strings.Contains(log, "app source: git tree "+tree+", as bitpoll.lock pins") {
		t.Errorf("the source check of the locked tree %s = %v, want it taken; log:\n%s", tree, err, log)
	}
}
