package standalone

import (
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/pyspec/wheeltag"
)

// DefaultGlibc is the oldest glibc python-build-standalone's linux-gnu
// builds need, as its documentation states; uv's metadata does not carry
// it, so an entry there may add a "glibc" key of its own.
const DefaultGlibc = "2.17"

// Download is one build as uv's download metadata describes it.
type Download struct {
	Version string // "3.13.15"
	Release string // the python-build-standalone release tag, "20260814"
	Arch    string // "x86_64" or "aarch64", as wheel tags spell it
	URL     string
	SHA256  string
	Glibc   string // the oldest glibc it needs
}

// minor is "3.13" of "3.13.15".
func (d Download) minor() string {
	parts := strings.SplitN(d.Version, ".", 3)
	if len(parts) < 2 {
		return d.Version
	}
	return parts[0] + "." + parts[1]
}

// BuiltinRelease is the python-build-standalone release of Builtin: the
// newest that uv's download metadata lists.
const BuiltinRelease = "20260814"

// Builtin are the builds `lock --python-standalone` pins without being
// told where to look: CPython 3.12, 3.13 and 3.14 on x86_64 and aarch64
// linux-gnu, from release BuiltinRelease, with the URLs and sha256 that
// uv's crates/uv-python/download-metadata.json gives. Their sizes are not
// known here.
var Builtin = []Download{
	builtin("3.12.14", "x86_64", "5acfa3e9ba26b51ae161c83aff278da915b590d22373a424b2ba55b8afe91fcc"),
	builtin("3.12.14", "aarch64", "2d8e17dfd732102cfeb18e0e1fa6769b24caa034e159981129590fe409c7157a"),
	builtin("3.13.15", "x86_64", "aaca2af2ab4d7b68a712660d1334c0cfd5ec13c0312ccd30c29122d8d0342320"),
	builtin("3.13.15", "aarch64", "985efd78c1c6521b379f7c64c2a25e6a1130f07441d1af8be441aa05260886aa"),
	builtin("3.14.7", "x86_64", "cefba034445d2875408d1fd4d5700ae6731563aeb54dcb39fd8164ab5c457533"),
	builtin("3.14.7", "aarch64", "86dfb106b303fa6a1991f7da42ced3e11576f777be299b3162e06617b6d22542"),
}

func builtin(version, arch, sha256 string) Download {
	return Download{
		Version: version, Release: BuiltinRelease, Arch: arch, SHA256: sha256, Glibc: DefaultGlibc,
		URL: fmt.Sprintf("https://github.com/astral-sh/python-build-standalone/releases/download/%s/cpython-%s%%2B%s-%s-unknown-linux-gnu-install_only_stripped.tar.gz",
			BuiltinRelease, version, BuiltinRelease, arch),
	}
}

// Pick returns the build for target among downloads: the newest CPython
// of the target's minor version on its architecture, by version, then
// release.
func Pick(downloads []Download, target wheeltag.Target) (Download, bool) {
	minor := fmt.Sprintf("3.%d", target.Minor)
	var best *Download
	for i := range downloads {
		d := &downloads[i]
		if d.Arch != target.Arch || d.minor() != minor {
			continue
		}
		if best == nil || newer(d, best) {
			best = d
		}
	}
	if best == nil {
		return Download{}, false
	}
	return *best, true
}

// newer orders by patch version, then release tag.
func newer(a, b *Download) bool {
	pa, pb := patch(a.Version), patch(b.Version)
	if pa != pb {
		return pa > pb
	}
	return a.Release > b.Release
}

func patch(version string) int {
	var major, minor, p int
	if _, err := fmt.Sscanf(version, "%d.%d.%d", &major, &minor, &p); err != nil {
		return -1
	}
	return p
}

// Entry is the lock's [[interpreter]] entry for d on target; size is 0
// when unknown.
func Entry(d Download, target string, size int64) lockfile.Interpreter {
	return lockfile.Interpreter{
		Target: target, Implementation: lockfile.ImplementationCPython, Version: d.Version, Release: d.Release,
		URL: d.URL, Size: size, SHA256: d.SHA256, Glibc: d.Glibc,
	}
}

// Entries picks a build for each target, in order, and says which
// targets have none.
func Entries(downloads []Download, targets []wheeltag.Target) ([]lockfile.Interpreter, error) {
	var out []lockfile.Interpreter
	var missing []string
	for _, t := range targets {
		d, ok := Pick(downloads, t)
		if !ok {
			missing = append(missing, t.String())
			continue
		}
		out = append(out, Entry(d, t.String(), 0))
	}
	if len(missing) > 0 {
		have := map[string]bool{}
		for _, d := range downloads {
			have[fmt.Sprintf("cp%s-%s", strings.ReplaceAll(d.minor(), ".", ""), d.Arch)] = true
		}
		var list []string
		for k := range have {
			list = append(list, k)
		}
		slices.Sort(list)
		return nil, fmt.Errorf("no standalone CPython build for %s (the download list has builds for %s): drop those targets, or give --python-downloads-json a list that has them",
			strings.Join(missing, ", "), orNone(list))
	}
	return out, nil
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "no linux-gnu CPython at all"
	}
	return strings.Join(list, ", ")
}

// archiveName is the file name of a build's URL, for messages.
func archiveName(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	name, err := url.PathUnescape(path.Base(u.Path))
	if err != nil {
		return path.Base(u.Path)
	}
	return name
}
