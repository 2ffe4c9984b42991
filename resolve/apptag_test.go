package resolve

import (
	"strings"
	"testing"
)

// bitpollTags are the tags of github.com/fsinfuhh/Bitpoll, in the order git
// lists them.
var bitpollTags = []string{"0.10.0", "0.11.0", "0.8.0", "0.8.1", "0.9", "0.9.1", "0.9.2", "v0.7.0"}

func TestSelectTag(t *testing.T) {
	for _, tc := range []struct {
		tags       []string
		constraint string
		tag, ver   string
	}{
		{bitpollTags, "", "0.11.0", "0.11.0"},
		{bitpollTags, "latest", "0.11.0", "0.11.0"},
		{bitpollTags, " latest ", "0.11.0", "0.11.0"},
		{bitpollTags, "0.11.0", "0.11.0", "0.11.0"},
		{bitpollTags, "~0.10", "0.10.0", "0.10.0"},
		{bitpollTags, ">=0.10, <1", "0.11.0", "0.11.0"},
		{bitpollTags, "<0.10", "0.9.2", "0.9.2"},
		{bitpollTags, "0.9.0", "0.9", "0.9"},
		{bitpollTags, "~0.9.0", "0.9.2", "0.9.2"},
		{bitpollTags, "0.7.0", "v0.7.0", "0.7.0"},
		{bitpollTags, "<0.8", "v0.7.0", "0.7.0"},
		{[]string{"release-1", "0.2.0", "foo", "0.3.0"}, "", "0.3.0", "0.3.0"},
		{[]string{"1.0.0", "1.1.0-rc1"}, "", "1.0.0", "1.0.0"},
		{[]string{"1.0.0", "1.1.0-rc1"}, ">=1.0.0", "1.0.0", "1.0.0"},
		{[]string{"1.0.0", "1.1.0-rc1"}, ">=1.1.0-rc0", "1.1.0-rc1", "1.1.0-rc1"},
		{[]string{"v1.2.0", "1.2.0"}, "", "1.2.0", "1.2.0"},
		{[]string{"1.2.0", "v1.2.0"}, "", "1.2.0", "1.2.0"},
	} {
		tag, ver, err := SelectTag(tc.tags, tc.constraint)
		if err != nil || tag != tc.tag || ver != tc.ver {
			t.Errorf("SelectTag(%q, %q) = %q, %q, %v, want %q, %q", tc.tags, tc.constraint, tag, ver, err, tc.tag, tc.ver)
		}
	}
}

func TestSelectTagErrors(t *testing.T) {
	for _, tc := range []struct {
		tags       []string
		constraint string
		want       []string // substrings of the error
	}{
		{bitpollTags, ">=1.0", []string{`">=1.0"`, "0.11.0, 0.10.0, 0.9.2", "v0.7.0"}},
		{bitpollTags, "not a constraint", []string{`"not a constraint"`, "not valid"}},
		{[]string{"main", "release"}, "", []string{"none of 2 tags"}},
		{nil, "latest", []string{"none of 0 tags"}},
		{[]string{"1.1.0-rc1"}, "", []string{"no tag matches", "1.1.0-rc1"}},
	} {
		tag, ver, err := SelectTag(tc.tags, tc.constraint)
		if err == nil {
			t.Errorf("SelectTag(%q, %q) = %q, %q, nil, want error", tc.tags, tc.constraint, tag, ver)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("SelectTag(%q, %q) error = %q, want it to contain %q", tc.tags, tc.constraint, err, w)
			}
		}
	}
}
