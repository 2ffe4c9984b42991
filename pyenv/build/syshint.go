package build

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
)

// What a build's output says when the host lacks a tool or header, as
// setuptools (and distutils before it), the compilers and the shell put
// it. A compiler that runs and fails ("failed with exit code 1") is the
// source's problem, not the host's, and matches none of these.
var (
	missingCXX    = regexp.MustCompile(`(?:command|unable to execute) '(?:[^']*/)?(?:[\w.-]+-)?(?:g\+\+|c\+\+|clang\+\+)'(?: failed)?: No such file or directory|(?:^|\s)(?:g\+\+|c\+\+): (?:command )?not found`)
	missingCC     = regexp.MustCompile(`(?:command|unable to execute) '(?:[^']*/)?(?:[\w.-]+-)?(?:gcc|cc|clang)'(?: failed)?: No such file or directory|(?:^|\s)(?:gcc|cc): (?:command )?not found`)
	missingHeader = regexp.MustCompile(`fatal error: ([\w/.+-]+\.h): No such file or directory`)
)

// distro is a family of Linux distributions and the names its packages
// give what a build needs.
type distro struct {
	names              string // for messages
	install            string // the command that installs packages
	cc, cxx, pyheaders string
	provides           string // how to find the package that has a file, %s the file
}

var (
	debian = distro{"Debian, Ubuntu", "apt-get install", "gcc", "g++", "python3-dev", "apt-file search %s"}
	rhel   = distro{"RHEL, Fedora and their rebuilds", "dnf install", "gcc", "gcc-c++", "python3-devel", "dnf provides '*/%s'"}
	suse   = distro{"openSUSE, SLES", "zypper install", "gcc", "gcc-c++", "python3-devel", "zypper search --provides --file %s"}
	arch   = distro{"Arch Linux", "pacman -S", "gcc", "gcc", "python", "pacman -F %s"}
)

// hostDistro reads the ID and ID_LIKE of an os-release file into the
// family it belongs to; false when it is none of the known ones.
func hostDistro(osRelease string) (distro, bool) {
	f, err := os.Open(osRelease)
	if err != nil {
		return distro{}, false
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && (k == "ID" || k == "ID_LIKE") {
			ids = append(ids, strings.Fields(strings.Trim(v, `"'`))...)
		}
	}
	for _, d := range []struct {
		ids []string
		d   distro
	}{
		{[]string{"debian", "ubuntu"}, debian},
		{[]string{"rhel", "fedora", "centos"}, rhel},
		{[]string{"suse", "opensuse", "sles"}, suse},
		{[]string{"arch"}, arch},
	} {
		if slices.ContainsFunc(ids, func(id string) bool { return slices.Contains(d.ids, id) }) {
			return d.d, true
		}
	}
	return distro{}, false
}

// systemHint reads a failed build's output for a compiler or header that
// the host lacks, and says which package of the host's distribution
// (read from osRelease) brings it, with the same for the other common
// families; "" when the output shows no such lack.
func systemHint(output, osRelease string) string {
	var what string
	var pkg func(distro) string
	switch {
	case missingCXX.MatchString(output):
		what, pkg = "a C++ compiler", func(d distro) string { return d.install + " " + d.cxx }
	case missingCC.MatchString(output):
		what, pkg = "a C compiler", func(d distro) string { return d.install + " " + d.cc }
	default:
		m := missingHeader.FindStringSubmatch(output)
		if m == nil {
			return ""
		}
		if m[1] == "Python.h" {
			what, pkg = "the Python headers (Python.h)", func(d distro) string { return d.install + " " + d.pyheaders }
		} else {
			what, pkg = "the header "+m[1], func(d distro) string { return fmt.Sprintf(d.provides, m[1]) + ", then install that package" }
		}
	}
	all := []distro{debian, rhel, suse, arch}
	host, known := hostDistro(osRelease)
	var b strings.Builder
	fmt.Fprintf(&b, "the build needs %s, which this host lacks: ", what)
	if known {
		fmt.Fprintf(&b, "`%s` (%s), then run again", pkg(host), host.names)
		return b.String()
	}
	for i, d := range all {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "`%s` (%s)", pkg(d), d.names)
	}
	b.WriteString(", then run again")
	return b.String()
}
