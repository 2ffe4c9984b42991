package bitpollinstall

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

const modulePath = "github.com/bitpoll-install/bitpoll-install"

// leaves implement one thing each and import no package of ours but other
// leaves.
var leaves = []string{"safearchive", "httpretry", "layout", "atomicfile", "secretkey", "pgbin", "progress", "pyspec/", "suggest", "tomlpos", "treehash", "workers"}

// importGraph returns, for each package of the module, the packages of the
// module its non-test files import, as paths relative to the module.
func importGraph(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...")
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	graph := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		pkg := rel(fields[0])
		graph[pkg] = nil
		for _, imp := range fields[1:] {
			if imp == modulePath || strings.HasPrefix(imp, modulePath+"/") {
				graph[pkg] = append(graph[pkg], rel(imp))
			}
		}
	}
	if len(graph) < 10 {
		t.Fatalf("go list found %d packages, want the whole module", len(graph))
	}
	return graph
}

func rel(pkg string) string {
	if pkg == modulePath {
		return "."
	}
	return strings.TrimPrefix(pkg, modulePath+"/")
}

func under(pkg, dir string) bool {
	return pkg == dir || strings.HasPrefix(pkg, dir+"/")
}

func isLeaf(pkg string) bool {
	for _, l := range leaves {
		if strings.HasSuffix(l, "/") && strings.HasPrefix(pkg, l) || pkg == l {
			return true
		}
	}
	return false
}

// TestLayers checks the shape of the import graph: the resolver is reached
// only from the command line (the test kits lock through the CLI), leaves
// stay leaves, and no top-level folder imports one that imports it
// back.
func TestLayers(t *testing.T) {
	graph := importGraph(t)
	for pkg, imps := range graph {
		for _, imp := range imps {
			if under(imp, "resolve") && !under(pkg, "resolve") && !under(pkg, "cmd") {
				t.Errorf("%s imports %s: only cmd/ may use the resolver; move what it needs into a leaf (pyspec/ or beside it)", pkg, imp)
			}
			if isLeaf(pkg) && !isLeaf(imp) {
				t.Errorf("leaf %s imports %s, which is not a leaf", pkg, imp)
			}
			if under(imp, "internal") && !under(pkg, "internal") {
				t.Errorf("%s imports the test kit %s: internal/ holds test kits only, for _test.go files", pkg, imp)
			}
		}
	}

	// Top-level folders: an import into a folder that reaches back points
	// up the tree.
	top := func(pkg string) string { return strings.SplitN(pkg, "/", 2)[0] }
	folders := map[string][]string{}
	for pkg, imps := range graph {
		for _, imp := range imps {
			if a, b := top(pkg), top(imp); a != b && !slices.Contains(folders[a], b) {
				folders[a] = append(folders[a], b)
			}
		}
	}
	reaches := func(from, to string) bool {
		seen := map[string]bool{from: true}
		stack := []string{from}
		for len(stack) > 0 {
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, next := range folders[f] {
				if next == to {
					return true
				}
				if !seen[next] {
					seen[next] = true
					stack = append(stack, next)
				}
			}
		}
		return false
	}
	for a, bs := range folders {
		for _, b := range bs {
			if reaches(b, a) {
				t.Errorf("%s/ imports %s/, which imports %s/ back: one of them points up the tree", a, b, a)
			}
		}
	}
}

// TestLayoutTable checks that README.md's layout table names every package
// of the module and no other (the first column of each row), and that its
// sentence on leaves names the leaves this file checks.
func TestLayoutTable(t *testing.T) {
	graph := importGraph(t)
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Layout\n")
	if !ok {
		t.Fatal(`README.md has no "## Layout" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	folder := regexp.MustCompile("`([a-z0-9_./-]+)/`")
	var listed []string
	for line := range strings.Lines(section) {
		cells := strings.Split(line, "|")
		if !strings.HasPrefix(line, "| ") || len(cells) < 3 {
			continue
		}
		for _, m := range folder.FindAllStringSubmatch(cells[1], -1) {
			listed = append(listed, m[1])
		}
	}
	for pkg := range graph {
		if pkg != "." && !slices.Contains(listed, pkg) {
			t.Errorf("package %s/ has no row in README.md's layout table", pkg)
		}
	}
	for _, pkg := range listed {
		if _, ok := graph[pkg]; !ok {
			t.Errorf("README.md's layout table names %s/, which is not a package of the module", pkg)
		}
	}

	_, sentence, ok := strings.Cut(section, "\nLeaves (")
	if !ok {
		t.Fatal(`README.md's layout section has no sentence "Leaves (...)"`)
	}
	sentence, _, _ = strings.Cut(sentence, ")")
	var named []string
	for _, m := range folder.FindAllStringSubmatch(sentence, -1) {
		named = append(named, m[1])
	}
	want := make([]string, len(leaves))
	for i, l := range leaves {
		want[i] = strings.TrimSuffix(l, "/")
	}
	sort.Strings(named)
	sort.Strings(want)
	if !slices.Equal(named, want) {
		t.Errorf("README.md's sentence on leaves names %q, want the leaves layers_test.go checks, %q", named, want)
	}
}
