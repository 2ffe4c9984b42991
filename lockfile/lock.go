// Package lockfile reads, checks and writes bitpoll.lock, the TOML file that
// pins a Bitpoll source tree and every Python distribution it runs on.
//
// The package shape follows PEP 751 (pylock.toml) so that an export to a
// standard lock is a small step; see ExportPylock. Parse validates
// everything and reports errors by line and field; Format writes the
// canonical form, so that a rewrite is byte-identical and a diff between two
// locks reads like a changelog. Nothing here touches the network.
package lockfile

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Version is the lock-version this package reads and writes.
const Version = 1

// Lock is a parsed bitpoll.lock.
type Lock struct {
	LockVersion    int    // lock-version: always Version
	CreatedBy      string // created-by: "bitpoll-install <version>"
	RequiresPython string // requires-python: the PEP 440 range the targets span, e.g. ">=3.12,<3.15"
	// Glibc is the oldest glibc the locked wheels run on ("2.28"): every
	// manylinux wheel's tag is at most this level.
	Glibc string
	// Targets are the environments the lock covers, as "cp313-x86_64".
	Targets []string
	// ExtraRequirements are the PEP 508 requirements added to the app's own
	// pins (the WSGI server, the PostgreSQL driver, ...), as given.
	ExtraRequirements []string
	// ExcludeNewer, when set (RFC 3339), ignored every file uploaded after it
	// while resolving, so that a rerun gives the same lock.
	ExcludeNewer string
	App          App
	Packages     []Package
	// Interpreters pin a standalone CPython per target, for hosts whose
	// own Python fits no target; optional.
	Interpreters []Interpreter
}

// App pins the application source tree.
type App struct {
	Name    string // "bitpoll"
	Version string // the tag's version, "0.11.0"
	URL     string // where the pinned content can be fetched (upstream repository)
	// Commit is the git commit (40 hex digits); empty for a source that
	// was not a git repository.
	Commit string
	// Tree is the git tree id (40 hex digits) of the source's files, which
	// is recomputed from the files of any form of the source.
	Tree string
	// NarHash is the SRI hash ("sha256-...") of the tree's NAR
	// serialisation, as `nix hash path` prints it; empty when the full tree
	// was not available.
	NarHash string
	// Requirements is the path, inside the tree, of the pip requirements
	// file whose pins were locked ("requirements.txt").
	Requirements string
	// PackagesDigest is "sha256:" and the hex digest of the packages (see
	// Lock.Digest). Format writes it; Parse checks it when present, so
	// that a lock cut at an entry boundary, or with an entry removed, is
	// refused offline.
	PackagesDigest string
}

// Package is one locked distribution at one version.
type Package struct {
	Name           string // PEP 503 normalised name
	Version        string // PEP 440 version
	Marker         string // PEP 508 marker: the targets that need it; empty means all
	RequiresPython string // the distribution's Requires-Python, if any
	// BuildOnly marks a package needed only to build an sdist entry, never
	// installed into the app's environment.
	BuildOnly bool
	// BuildRequires names (normalised) the locked packages an sdist entry
	// needs in its isolated build environment. Only set with Sdist.
	BuildRequires []string
	// Sdist is the source distribution, set when some target the package
	// is needed on has no wheel for it.
	Sdist *File
	// SdistTargets names the targets ("cp313-aarch64") that build Sdist
	// because no wheel fits them, when the package has wheels for others.
	// It is empty for a package with no wheels, which builds its sdist on
	// every target. A target it does not name never falls back to Sdist.
	SdistTargets []string
	Wheels       []File
}

// File is a wheel or an sdist.
type File struct {
	Name string // the file name
	URL  string
	Size int64
	// UploadTime is when the index received the file (RFC 3339; Parse
	// and Format keep it in UTC). The lock stores it as a string, since
	// Nix's builtins.fromTOML rejects TOML date-times; ExportPylock writes
	// the date-time PEP 751 asks for.
	UploadTime string
	SHA256     string // hashes.sha256, 64 lowercase hex digits
}

// Digest is the digest of l's packages that [app] packages-digest holds:
// the sha256 of one line per package, in the canonical order, of its name,
// version and the sha256 of each of its files.
func (l *Lock) Digest() string {
	h := sha256.New()
	for _, p := range sortedPackages(l.Packages) {
		fmt.Fprintf(h, "%s %s", p.Name, p.Version)
		if p.Sdist != nil {
			fmt.Fprintf(h, " %s", p.Sdist.SHA256)
		}
		if len(p.SdistTargets) > 0 {
			// Only written when set, so the digest of a lock without
			// per-target sdists is what it always was.
			fmt.Fprintf(h, " sdist-targets=%s", strings.Join(sorted(p.SdistTargets), ","))
		}
		for _, f := range sortedFiles(p.Wheels) {
			fmt.Fprintf(h, " %s", f.SHA256)
		}
		h.Write([]byte("\n"))
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
