package resolve

import (
	"fmt"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// SelectTag picks the app's release tag: the newest of tags whose version
// satisfies constraint, in Masterminds/semver syntax ("0.11.0", "~0.11",
// ">=0.10, <1"). An empty constraint or "latest" means the newest release.
//
// Tags are read leniently, so "0.9" is 0.9.0 and "v0.7.0" is 0.7.0; tags that
// are not versions at all are ignored. Prereleases are chosen only when the
// constraint names one. If two tags spell the same version, the
// lexically smaller tag wins, so the result does not depend on tag order.
// The returned version is the tag without a leading "v".
func SelectTag(tags []string, constraint string) (tag, version string, err error) {
	var check func(*semver.Version) bool
	switch c := strings.TrimSpace(constraint); c {
	case "", "latest":
		check = func(v *semver.Version) bool { return v.Prerelease() == "" }
	default:
		cs, err := semver.NewConstraint(c)
		if err != nil {
			return "", "", fmt.Errorf("select app tag: constraint %q is not valid (want e.g. \"0.11.0\", \"~0.11\" or \">=0.10, <1\"): %w", constraint, err)
		}
		check = cs.Check
	}

	type candidate struct {
		tag string
		v   *semver.Version
	}
	var all []candidate
	for _, t := range tags {
		v, err := semver.NewVersion(t)
		if err != nil {
			continue
		}
		all = append(all, candidate{t, v})
	}
	// Newest first; equal versions by tag text.
	sort.Slice(all, func(i, j int) bool {
		if c := all[i].v.Compare(all[j].v); c != 0 {
			return c > 0
		}
		return all[i].tag < all[j].tag
	})
	for _, c := range all {
		if check(c.v) {
			return c.tag, strings.TrimPrefix(c.tag, "v"), nil
		}
	}

	if len(all) == 0 {
		return "", "", fmt.Errorf("select app tag: none of %d tags is a version (want tags like \"0.11.0\" or \"v0.7.0\")", len(tags))
	}
	avail := make([]string, len(all))
	for i, c := range all {
		avail[i] = c.tag
	}
	return "", "", fmt.Errorf("select app tag: no tag matches %q; available versions: %s", constraint, strings.Join(avail, ", "))
}
