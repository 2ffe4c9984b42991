package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bitpoll-install/bitpoll-install/fetch"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/resolve"
	"github.com/bitpoll-install/bitpoll-install/treehash"
)

// appPinsChecker returns the check that l covers every pin of the
// requirements file inside an app tree that hashes to l's tree.
func appPinsChecker(l *lockfile.Lock) func(appDir string) error {
	return func(appDir string) error {
		reqs, err := resolve.ReadRequirements(appDir, l.App.Requirements)
		if err != nil {
			return err
		}
		pins := make([]lockfile.Pin, len(reqs))
		for i, r := range reqs {
			pins[i] = lockfile.Pin{Req: r.Requirement, Where: r.Where()}
		}
		return l.CheckPins(pins)
	}
}

// checkLockAgainstTree checks l against a local copy of its app: the copy
// must hash to l's tree, and l must cover its requirements file.
func checkLockAgainstTree(ctx context.Context, l *lockfile.Lock, src string) error {
	dir := src
	if fetch.IsGitRepo(src) {
		if l.App.Commit == "" {
			return fmt.Errorf("--app-source %s is a git repository, but the lock pins no commit: give the tree the lock was made from", src)
		}
		tmp, err := os.MkdirTemp("", "bitpoll-check-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = filepath.Join(tmp, "app")
		if _, err := fetch.ExportGitTree(ctx, src, l.App.Commit, dir); err != nil {
			return err
		}
	} else if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
		return fmt.Errorf("--app-source %s: with --check, give a local directory or git repository (%v)", src, err)
	}
	tree, err := treehash.GitTree(dir)
	if err != nil {
		return err
	}
	if tree != l.App.Tree {
		return fmt.Errorf("--app-source %s hashes to tree %s, but the lock pins %s: it is not the locked %s %s", src, tree, l.App.Tree, l.App.Name, l.App.Version)
	}
	return appPinsChecker(l)(dir)
}
