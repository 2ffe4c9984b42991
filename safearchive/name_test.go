package safearchive

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"pkg/mod.py", ""},
		{"pkg/", ""},
		{"a", ""},
		{"a..b/c..", ""},
		{"", "empty name"},
		{"/", "empty name"},
		{"a\x00b", "NUL"},
		{`a\b`, "backslash"},
		{`..\evil`, "backslash"},
		{"/etc/passwd", "absolute path"},
		{"C:evil", "drive letter"},
		{"c:/evil", "drive letter"},
		{"..", `escapes the archive with ".."`},
		{"a/../../evil", `escapes the archive with ".."`},
		{"a/..", `escapes the archive with ".."`},
		{"./a", "not a clean path"},
		{"a//b", "not a clean path"},
		{"a/./b", "not a clean path"},
		{"a//", "not a clean path"},
	} {
		err := CheckName(tc.name)
		if tc.want == "" {
			if err != nil {
				t.Errorf("CheckName(%q) = %v, want nil", tc.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckName(%q) = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// FuzzCheckName checks that every accepted member name stays inside the
// destination when joined to it.
func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"a", "a/b", "../a", "/etc/passwd", "a/../..", "./.", "...", `..\x`, "a//b", "a/./../b"} {
		f.Add(s)
	}
	root := filepath.FromSlash("/dst/root")
	f.Fuzz(func(t *testing.T, name string) {
		if CheckName(name) != nil {
			return
		}
		p := filepath.Join(root, name)
		if p != root && !strings.HasPrefix(p, root+string(filepath.Separator)) {
			t.Errorf("CheckName(%q) = nil, but it joins to %q outside %q", name, p, root)
		}
	})
}
