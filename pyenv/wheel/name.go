package wheel

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

// parseFilename splits a wheel file name,
// {name}-{version}(-{build})?-{python}-{abi}-{platform}.whl.
func parseFilename(path string) (name, version string, err error) {
	base := filepath.Base(path)
	stem, ok := strings.CutSuffix(base, ".whl")
	parts := strings.Split(stem, "-")
	if !ok || (len(parts) != 5 && len(parts) != 6) {
		return "", "", fmt.Errorf("file name %q is not name-version(-build)-python-abi-platform.whl", base)
	}
	for _, p := range parts {
		if p == "" {
			return "", "", fmt.Errorf("file name %q has an empty field", base)
		}
	}
	return parts[0], parts[1], nil
}

// normalize is the PEP 503 form of a project name: runs of "-", "_" and "."
// become one "-", and letters are lowercased.
func normalize(name string) string {
	return strings.ToLower(separators.ReplaceAllString(name, "-"))
}

var separators = regexp.MustCompile(`[-_.]+`)

// sameVersion compares the version in a file name with the one in the
// dist-info name; file names spell "-" as "_" and case does not matter.
func sameVersion(a, b string) bool {
	fix := func(s string) string { return strings.ReplaceAll(s, "_", "-") }
	return strings.EqualFold(fix(a), fix(b))
}

// checkName refuses member names that could land outside the target
// directory or mean different files on different systems.
func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty name")
	case strings.ContainsAny(name, "\\\x00"):
		return fmt.Errorf("name contains a backslash or NUL byte")
	case strings.HasPrefix(name, "/"):
		return fmt.Errorf("absolute path: names must be relative to the wheel root")
	}
	for _, c := range strings.Split(strings.TrimSuffix(name, "/"), "/") {
		switch c {
		case "..":
			return fmt.Errorf("path escapes the wheel root with \"..\"")
		case "", ".":
			return fmt.Errorf("path is not clean (empty or \".\" element)")
		}
	}
	return nil
}
