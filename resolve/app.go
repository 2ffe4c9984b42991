package resolve

import (
	"github.com/bitpoll-install/bitpoll-install/safearchive"

	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bitpoll-install/bitpoll-install/fetch"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/pyspec/pep440"
	"github.com/bitpoll-install/bitpoll-install/treehash"
)

// Upstream is Bitpoll's repository, the default app source.
const Upstream = "https://github.com/fsinfuhh/Bitpoll"

// AppSource says where the app comes from and which release to pin.
type AppSource struct {
	// Src is a git repository (URL, "git::" source or local path, bare or
	// not), a directory, or an archive URL.
	Src string
	// Version constrains the release tags of a git source (semver
	// syntax: "0.11.0", "~0.11", "" for the newest). For a directory or
	// an archive, which have no tags, it is the version to record, exactly.
	Version string
	// URL is recorded in the lock as where the pinned content lives. For a
	// git source it defaults to Upstream: the commit and tree pin the
	// content, whichever mirror it came from.
	URL string
	// Requirements is the requirements file inside the tree.
	Requirements string
	// Unpack bounds what an archive source may unpack to; zero means
	// safearchive's defaults.
	Unpack safearchive.Limits
}

// PinnedApp is a pinned source tree, unpacked in Dir.
type PinnedApp struct {
	App lockfile.App
	Dir string
	// Missing lists paths whose content was absent from a partial mirror:
	// the tree id then comes from git's own objects and NarHash is empty.
	Missing []string
}

// PinApp fetches src into an empty directory dir, chooses its release and
// computes its pin: commit, git tree id and NAR hash.
func PinApp(ctx context.Context, src AppSource, dir string) (*PinnedApp, error) {
	if src.Requirements == "" {
		src.Requirements = "requirements.txt"
	}
	if isGitSource(src.Src) {
		return pinGit(ctx, src, dir)
	}
	return pinTree(ctx, src, dir)
}

func isGitSource(s string) bool {
	if strings.HasPrefix(s, "git::") || strings.HasSuffix(s, ".git") {
		return true
	}
	if strings.HasPrefix(s, "https://github.com/") && strings.Count(strings.TrimPrefix(s, "https://github.com/"), "/") == 1 {
		return true
	}
	return fetch.IsGitRepo(s)
}

func pinGit(ctx context.Context, src AppSource, dir string) (*PinnedApp, error) {
	repo := strings.TrimPrefix(src.Src, "git::")
	tags, err := fetch.Tags(ctx, repo)
	if err != nil {
		return nil, fmt.Errorf("list release tags of %s: %w", repo, err)
	}
	names := make([]string, 0, len(tags))
	for t := range tags {
		names = append(names, t)
	}
	tag, version, err := SelectTag(names, src.Version)
	if err != nil {
		return nil, fmt.Errorf("choose a release of %s: %w", repo, err)
	}
	local := repo
	if !fetch.IsGitRepo(repo) {
		// A remote repository is cloned aside first; the export below
		// then works the same for every form of the source.
		local = filepath.Join(dir + ".git")
		if err := fetch.Get(ctx, "git::"+repo+"?ref="+tag, local); err != nil {
			return nil, fmt.Errorf("clone %s at %s: %w", repo, tag, err)
		}
		defer os.RemoveAll(local)
	}
	exp, err := fetch.ExportGitTree(ctx, local, tags[tag], dir)
	if err != nil {
		return nil, fmt.Errorf("export %s at %s: %w", repo, tag, err)
	}
	url := src.URL
	if url == "" {
		url = Upstream
	}
	pa := &PinnedApp{Dir: dir, Missing: exp.Missing, App: lockfile.App{
		Name: "bitpoll", Version: version, URL: url, Commit: exp.Commit, Requirements: src.Requirements,
	}}
	if len(exp.Missing) > 0 {
		// A partial mirror: the files cannot be hashed, but git's tree
		// object still names their content, so the pin stays exact.
		pa.App.Tree = exp.Tree
		return pa, nil
	}
	tree, err := treehash.GitTree(dir)
	if err != nil {
		return nil, fmt.Errorf("hash %s at %s: %w", repo, tag, err)
	}
	if tree != exp.Tree {
		return nil, fmt.Errorf("the files of %s at %s hash to tree %s, but git says %s: the repository is corrupt", repo, tag, tree, exp.Tree)
	}
	pa.App.Tree = tree
	if pa.App.NarHash, err = treehash.NarHash(dir); err != nil {
		return nil, fmt.Errorf("hash %s at %s: %w", repo, tag, err)
	}
	return pa, nil
}

// FlagError is a flag value that cannot work with the source given: a
// usage error, which the fix names.
type FlagError struct{ Err error }

func (e *FlagError) Error() string { return e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

func pinTree(ctx context.Context, src AppSource, dir string) (*PinnedApp, error) {
	if src.Version == "" {
		return nil, &FlagError{errors.New("a directory or archive source has no release tags: give its version with --app-version")}
	}
	if _, err := pep440.Parse(src.Version); err != nil {
		// A range such as "~0.11" picks among a repository's tags; a tree
		// has none to pick from.
		return nil, &FlagError{fmt.Errorf("--app-version %q: a directory or archive source has no release tags to choose from, so give its exact version, like \"0.11.0\" (%v)", src.Version, err)}
	}
	getSrc := src.Src
	if abs, err := filepath.Abs(src.Src); err == nil {
		if _, err := os.Stat(abs); err == nil {
			getSrc = abs
		}
	}
	if err := fetch.GetLimited(ctx, getSrc, dir, src.Unpack); err != nil {
		return nil, fmt.Errorf("fetch %s: %w", src.Src, err)
	}
	tree, err := treehash.GitTree(dir)
	if err != nil {
		return nil, fmt.Errorf("hash %s: %w", src.Src, err)
	}
	nar, err := treehash.NarHash(dir)
	if err != nil {
		return nil, fmt.Errorf("hash %s: %w", src.Src, err)
	}
	url := src.URL
	if url == "" {
		url = getSrc
		if filepath.IsAbs(url) {
			url = "file://" + url
		}
	}
	return &PinnedApp{Dir: dir, App: lockfile.App{
		Name: "bitpoll", Version: src.Version, URL: url, Tree: tree, NarHash: nar, Requirements: src.Requirements,
	}}, nil
}
