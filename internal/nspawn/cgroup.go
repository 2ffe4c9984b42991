package nspawn

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ownCgroup makes a cgroup v2 of its own for one machine, below the
// caller's, and returns it open for CLONE_INTO_CGROUP, or nil when there
// is no cgroup2 hierarchy to use. nspawn without a host systemd keeps the
// caller's cgroup and puts the machine in a "payload" cgroup below it, so
// two machines started from one cgroup shared it: the systemd of each
// removed the other's unit cgroups, and a unit failed to spawn.
func ownCgroup(name string) (*os.File, func(), error) {
	mount, err := cgroup2Mount()
	if err != nil || mount == "" {
		return nil, func() {}, err
	}
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, func() {}, err
	}
	cur := ""
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			cur = rest
		}
	}
	dir, err := os.MkdirTemp(filepath.Join(mount, cur), "bitpoll-machine-"+name+"-")
	if err != nil {
		return nil, func() {}, fmt.Errorf("make a cgroup for machine %s: %w", name, err)
	}
	f, err := os.Open(dir)
	if err != nil {
		os.Remove(dir)
		return nil, func() {}, err
	}
	return f, func() { f.Close(); removeCgroup(dir) }, nil
}

// cgroup2Mount is where the cgroup v2 hierarchy is mounted ("" if not).
func cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID parent major:minor root mountpoint options... - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(pre)
		if ok && len(fields) >= 5 && strings.HasPrefix(post, "cgroup2 ") {
			return fields[4], nil
		}
	}
	return "", sc.Err()
}

// removeCgroup removes dir and the cgroups below it, deepest first; a
// cgroup that still has processes stays (best effort: a machine that is
// gone leaves none).
func removeCgroup(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			removeCgroup(filepath.Join(dir, e.Name()))
		}
	}
	os.Remove(dir)
}
