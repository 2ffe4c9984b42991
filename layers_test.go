package bitpollinstall

import (
	"os/exec"
	"slices"
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
