package wheel

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// parseWheelFile reads the WHEEL file and reports whether the wheel's root
// belongs in purelib. Only Wheel-Version 1.x is accepted; a newer minor
// version is read as 1.0, as the format asks.
func parseWheelFile(data []byte) (rootIsPurelib bool, err error) {
	fields := make(map[string]string)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		if _, dup := fields[k]; !dup {
			fields[k] = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("read WHEEL: %w", err)
	}
	v, ok := fields["Wheel-Version"]
	if !ok {
		return false, fmt.Errorf("WHEEL has no Wheel-Version field")
	}
	major, _, _ := strings.Cut(v, ".")
	if n, err := strconv.Atoi(major); err != nil || n != 1 {
		return false, fmt.Errorf("Wheel-Version %q is not supported, want 1.x: upgrade the installer or use an older wheel", v)
	}
	return strings.EqualFold(fields["Root-Is-Purelib"], "true"), nil
}

// entryPoint is one console or GUI script to generate: Name in the scripts
// directory, which calls Attr (a dotted path) of Module.
type entryPoint struct {
	Name, Module, Attr string
}

var (
	dottedName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)
	extrasPart = regexp.MustCompile(`\s*\[[^\]]*\]\s*$`)
)

// parseEntryPoints returns the console_scripts and gui_scripts of an
// entry_points.txt (an INI file), sorted by name. Other sections are not
// read. Module and attribute must be plain dotted identifiers, since they
// are written into the launcher's Python source.
func parseEntryPoints(data []byte) ([]entryPoint, error) {
	var out []entryPoint
	seen := make(map[string]bool)
	section := ""
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimRight(line, "\r")
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || trimmed[0] == '#' || trimmed[0] == ';':
			continue
		case trimmed[0] == '[':
			if !strings.HasSuffix(trimmed, "]") {
				return nil, fmt.Errorf("entry_points.txt line %d: section header %q has no closing \"]\"", n, trimmed)
			}
			section = strings.TrimSpace(trimmed[1 : len(trimmed)-1])
			continue
		}
		if section != "console_scripts" && section != "gui_scripts" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil, fmt.Errorf("entry_points.txt line %d: continuation line %q in [%s] is not supported", n, trimmed, section)
		}
		i := strings.IndexAny(trimmed, "=:")
		if i < 0 {
			return nil, fmt.Errorf("entry_points.txt line %d: %q is not name = module:attr", n, trimmed)
		}
		ep := entryPoint{Name: strings.TrimSpace(trimmed[:i])}
		value := extrasPart.ReplaceAllString(strings.TrimSpace(trimmed[i+1:]), "")
		mod, attr, ok := strings.Cut(value, ":")
		ep.Module, ep.Attr = strings.TrimSpace(mod), strings.TrimSpace(attr)
		switch {
		case !ok:
			return nil, fmt.Errorf("entry_points.txt line %d: script %q has no callable: want module:attr, got %q", n, ep.Name, value)
		case !dottedName.MatchString(ep.Module) || !dottedName.MatchString(ep.Attr):
			return nil, fmt.Errorf("entry_points.txt line %d: script %q points at %q, want module:attr with dotted Python identifiers", n, ep.Name, value)
		case !validScriptName(ep.Name):
			return nil, fmt.Errorf("%w: entry_points.txt line %d: script name %q is not a plain file name", ErrUnsafe, n, ep.Name)
		case seen[ep.Name]:
			return nil, fmt.Errorf("entry_points.txt line %d: script %q is defined twice", n, ep.Name)
		}
		seen[ep.Name] = true
		out = append(out, ep)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// validScriptName accepts a single path element without control characters.
func validScriptName(s string) bool {
	if s == "" || s == "." || s == ".." || strings.HasPrefix(s, "-") {
		return false
	}
	for _, r := range s {
		if r == '/' || r == '\\' || r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
