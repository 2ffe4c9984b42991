// Package wheeltag implements PEP 425 compatibility tags and PEP 427 wheel
// file names for the targets a lock covers: CPython 3.x on glibc Linux,
// x86_64 or aarch64, no older than a glibc floor.
//
// The tag order is the one pip and uv use (packaging.tags.sys_tags), so the
// wheel picked for a target here is the wheel an installer would pick on a
// machine with exactly the floor's glibc. Plain linux_<arch> wheels are never
// compatible: they are not portable beyond the machine that built them.
// Versions are kept as strings; see the pep440 package to compare them.
package wheeltag

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// MinMinor and MaxMinor bound the CPython 3 minor versions a target may name.
const (
	MinMinor = 8
	MaxMinor = 99
)

// Glibc is a glibc version, such as the floor a lock must run on.
type Glibc struct{ Major, Minor int }

// ParseGlibc parses a glibc version like "2.28". Only major version 2 exists
// and manylinux starts at 2.5, so anything else is rejected.
func ParseGlibc(s string) (Glibc, error) {
	major, minor, ok := strings.Cut(s, ".")
	ma, err1 := atoi(major)
	mi, err2 := atoi(minor)
	if !ok || err1 != nil || err2 != nil || ma != 2 || mi < 5 || mi > 999 {
		return Glibc{}, fmt.Errorf("invalid glibc version %q: want 2.<minor> with minor 5 or more, like \"2.28\"", s)
	}
	return Glibc{ma, mi}, nil
}

// String returns the version as "2.28".
func (g Glibc) String() string { return fmt.Sprintf("%d.%d", g.Major, g.Minor) }

// atoi parses a plain decimal number: digits only, no sign, no leading zero.
func atoi(s string) (int, error) {
	if s == "" || len(s) > 4 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("not a number: %q", s)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("not a number: %q", s)
		}
	}
	return strconv.Atoi(s)
}

// Target is one environment a lock covers: CPython 3.<Minor> on glibc Linux
// Arch, with Glibc the oldest glibc it must run on.
type Target struct {
	Minor int
	Arch  string // "x86_64" or "aarch64"
	Glibc Glibc
}

// ParseTarget parses a target name like "cp313-x86_64" and attaches the
// glibc floor g.
func ParseTarget(s string, g Glibc) (Target, error) {
	bad := func(why string) (Target, error) {
		return Target{}, fmt.Errorf("invalid target %q: %s", s, why)
	}
	py, arch, ok := strings.Cut(s, "-")
	if !ok || !strings.HasPrefix(py, "cp3") {
		return bad(`want cp3<minor>-<arch>, like "cp313-x86_64"`)
	}
	minor, err := atoi(py[len("cp3"):])
	if err != nil || minor < MinMinor || minor > MaxMinor {
		return bad(fmt.Sprintf("want CPython 3.%d to 3.%d, like \"cp313\"", MinMinor, MaxMinor))
	}
	if arch != "x86_64" && arch != "aarch64" {
		return bad(fmt.Sprintf("unknown architecture %q (want x86_64 or aarch64)", arch))
	}
	return Target{Minor: minor, Arch: arch, Glibc: g}, nil
}

// String returns the target's name, "cp313-x86_64"; the glibc floor is not
// part of it.
func (t Target) String() string { return fmt.Sprintf("cp3%d-%s", t.Minor, t.Arch) }

// PythonVersion returns the interpreter's version as "3.13".
func (t Target) PythonVersion() string { return fmt.Sprintf("3.%d", t.Minor) }

// Tag is one PEP 425 compatibility tag, lowercase.
type Tag struct{ Python, ABI, Platform string }

// String returns the tag as "cp313-cp313-manylinux_2_17_x86_64".
func (t Tag) String() string { return t.Python + "-" + t.ABI + "-" + t.Platform }

// Platforms returns the platform tags the target supports, best first: every
// manylinux_2_<m> from the floor down to the oldest for the architecture,
// each followed by its legacy alias (manylinux2014, 2010, 1) where one
// exists, then nothing else.
func (t Target) Platforms() []string {
	if t.Glibc.Major != 2 {
		return nil
	}
	oldest := 17 // manylinux2014 was the first to define aarch64
	if t.Arch == "x86_64" {
		oldest = 5
	}
	legacy := map[int]string{17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
	var out []string
	for m := t.Glibc.Minor; m >= oldest; m-- {
		out = append(out, fmt.Sprintf("manylinux_2_%d_%s", m, t.Arch))
		if l, ok := legacy[m]; ok {
			out = append(out, l+"_"+t.Arch)
		}
	}
	return out
}

// Tags returns every tag the target supports, best first, in the order of
// packaging.tags.sys_tags for that interpreter and platform list.
func (t Target) Tags() []Tag {
	plats := t.Platforms()
	cp := fmt.Sprintf("cp3%d", t.Minor)
	var out []Tag
	add := func(py, abi string, plats []string) {
		for _, p := range plats {
			out = append(out, Tag{py, abi, p})
		}
	}
	// The interpreter's own ABI, then the stable ABI, then no ABI.
	add(cp, cp, plats)
	add(cp, "abi3", plats)
	add(cp, "none", plats)
	// abi3 wheels built for any older CPython 3 down to 3.2, which
	// introduced the stable ABI.
	for m := t.Minor - 1; m >= 2; m-- {
		add(fmt.Sprintf("cp3%d", m), "abi3", plats)
	}
	// Generic Python tags: py3<minor>, py3, then older minors.
	pys := []string{fmt.Sprintf("py3%d", t.Minor), "py3"}
	for m := t.Minor - 1; m >= 0; m-- {
		pys = append(pys, fmt.Sprintf("py3%d", m))
	}
	for _, py := range pys {
		add(py, "none", plats)
	}
	out = append(out, Tag{cp, "none", "any"})
	for _, py := range pys {
		out = append(out, Tag{py, "none", "any"})
	}
	return out
}

// Rank returns the index in t.Tags() of the best tag f carries, and false
// when f supports none of them. A lower rank is a better wheel.
func (t Target) Rank(f Filename) (rank int, ok bool) {
	have := make(map[Tag]bool, len(f.Tags))
	for _, tag := range f.Tags {
		have[tag] = true
	}
	for i, tag := range t.Tags() {
		if have[tag] {
			return i, true
		}
	}
	return 0, false
}

// Filename is a parsed PEP 427 wheel file name.
type Filename struct {
	Name    string // PEP 503 normalised project name
	Version string // as written in the file name
	Build   string // optional build tag, starts with a digit
	Tags    []Tag  // the expanded tag set, in file name order
}

var (
	// wheelName is the project name as a wheel file name may spell it.
	wheelName = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9._]*[A-Za-z0-9])?$`)
	// version and build are loose on purpose: the pep440 package judges
	// versions, this only keeps separators and junk out.
	wheelVersion = regexp.MustCompile(`^[A-Za-z0-9._!+]+$`)
	wheelBuild   = regexp.MustCompile(`^[0-9][A-Za-z0-9_.]*$`)
	tagPart      = regexp.MustCompile(`^[a-z0-9_]+$`)
	nameRun      = regexp.MustCompile(`[-_.]+`)
)

// ParseFilename parses a wheel file name such as
// "django-6.0.5-py3-none-any.whl", expanding compressed tag sets like
// "py2.py3-none-any" into one Tag each.
func ParseFilename(fn string) (Filename, error) {
	bad := func(why string) (Filename, error) {
		return Filename{}, fmt.Errorf("invalid wheel file name %q: %s", fn, why)
	}
	stem, ok := strings.CutSuffix(fn, ".whl")
	if !ok {
		return bad(`want a name ending in ".whl"`)
	}
	parts := strings.Split(stem, "-")
	if len(parts) != 5 && len(parts) != 6 {
		return bad("want <name>-<version>[-<build>]-<python>-<abi>-<platform>.whl")
	}
	f := Filename{Version: parts[1]}
	if strings.Contains(parts[0], "__") || !wheelName.MatchString(parts[0]) {
		return bad(fmt.Sprintf("project name %q has characters other than letters, digits, \".\" and single \"_\"", parts[0]))
	}
	f.Name = NormalizeName(parts[0])
	if !wheelVersion.MatchString(parts[1]) {
		return bad(fmt.Sprintf("version %q has characters a PEP 440 version cannot have", parts[1]))
	}
	if len(parts) == 6 {
		if !wheelBuild.MatchString(parts[2]) {
			return bad(fmt.Sprintf("build tag %q must start with a digit", parts[2]))
		}
		f.Build = parts[2]
	}
	n := len(parts)
	pys, abis, plats := parts[n-3], parts[n-2], parts[n-1]
	for _, py := range strings.Split(pys, ".") {
		for _, abi := range strings.Split(abis, ".") {
			for _, plat := range strings.Split(plats, ".") {
				tag := Tag{strings.ToLower(py), strings.ToLower(abi), strings.ToLower(plat)}
				for _, p := range []string{tag.Python, tag.ABI, tag.Platform} {
					if !tagPart.MatchString(p) {
						return bad(fmt.Sprintf("tag %q has an empty or invalid component (want letters, digits and \"_\")", pys+"-"+abis+"-"+plats))
					}
				}
				f.Tags = append(f.Tags, tag)
			}
		}
	}
	return f, nil
}

// NormalizeName returns the PEP 503 form of a project name: lowercase, with
// each run of "-", "_" and "." replaced by one "-".
func NormalizeName(s string) string {
	return nameRun.ReplaceAllString(strings.ToLower(s), "-")
}

// IsSdist reports whether fn names a source distribution (".tar.gz" or
// ".zip", the two formats PyPI accepts).
func IsSdist(fn string) bool {
	return strings.HasSuffix(fn, ".tar.gz") || strings.HasSuffix(fn, ".zip")
}
