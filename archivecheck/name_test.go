package archivecheck

import (
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
