package nix

import (
	"encoding/json"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallerSourceHasEmbeds evaluates the flake's bitpoll-install
// source, the file set its Go build sees, and checks that it holds every
// file a //go:embed directive of the module names: a file left out of
// nix/bitpoll-install.nix builds with the Go tool and fails only in Nix.
func TestInstallerSourceHasEmbeds(t *testing.T) {
	root := repoRoot(t)
	embeds := goEmbeds(t, root)
	if len(embeds) < 5 {
		t.Fatalf("found %d //go:embed files (%q), want the module's every one", len(embeds), embeds)
	}
	list, err := json.Marshal(embeds)
	if err != nil {
		t.Fatal(err)
	}
	out, err := flake(t, "eval", "--json", "FLAKE#packages.x86_64-linux.bitpoll-install.src", "--apply",
		"src: builtins.filter (p: !builtins.pathExists (src + \"/\" + p)) (builtins.fromJSON "+nixStr(string(list))+")")
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	if err := json.Unmarshal(out, &missing); err != nil {
		t.Fatalf("nix eval: %v: %s", err, out)
	}
	if len(missing) > 0 {
		t.Errorf("the Nix build of bitpoll-install lacks embedded files %q: add them to nix/bitpoll-install.nix's fileset", missing)
	}
}

// goEmbeds lists the files the module's non-test Go files embed, relative
// to root. Only plain file names are used here, no patterns.
func goEmbeds(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		dir, _ := filepath.Rel(root, filepath.Dir(p))
		for line := range strings.Lines(string(data)) {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "//go:embed "); ok {
				for _, f := range strings.Fields(rest) {
					out = append(out, path.Join(filepath.ToSlash(dir), f))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
