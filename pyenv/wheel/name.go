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
