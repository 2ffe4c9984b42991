package resolve

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/bitpoll-install/bitpoll-install/pyspec/pep508"
)

// Requirement is one line of a requirements file, with where it came from.
type Requirement struct {
	pep508.Requirement
	File string // the requirements file, relative to the tree
	Line int
}

// Where is "file:line", for messages.
func (r Requirement) Where() string {
	if r.File == "" {
		return "command line"
	}
	return fmt.Sprintf("%s:%d", r.File, r.Line)
}

// maxIncludeDepth bounds "-r" chains, which could otherwise loop.
const maxIncludeDepth = 8

// ReadRequirements parses the pip requirements file rel inside the tree root.
// It follows "-r"/"-c" includes inside the same tree, ignores hashes and
// comments, and refuses what cannot be locked reproducibly (editables,
// direct URLs). Index options are ignored: the index is a flag of its own.
func ReadRequirements(root, rel string) ([]Requirement, error) {
	return readRequirements(root, rel, 0)
}

func readRequirements(root, rel string, depth int) ([]Requirement, error) {
	if depth > maxIncludeDepth {
		return nil, fmt.Errorf("read requirements %s: includes nested deeper than %d", rel, maxIncludeDepth)
	}
	clean := path.Clean(filepath.ToSlash(rel))
	if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return nil, fmt.Errorf("read requirements %q: path leaves the source tree", rel)
	}
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(clean)))
	if err != nil {
		return nil, fmt.Errorf("read requirements: %w", err)
	}
	return parseRequirements(data, clean, func(inc string) ([]Requirement, error) {
		return readRequirements(root, path.Join(path.Dir(clean), inc), depth+1)
	})
}

// ParseRequirements parses requirements file content; includes are refused.
func ParseRequirements(data []byte, name string) ([]Requirement, error) {
	return parseRequirements(data, name, func(inc string) ([]Requirement, error) {
		return nil, fmt.Errorf("includes are not supported here (%q)", inc)
	})
}

func parseRequirements(data []byte, name string, include func(string) ([]Requirement, error)) ([]Requirement, error) {
	var out []Requirement
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	lineNo, start := 0, 0
	var logical strings.Builder
	for sc.Scan() {
		lineNo++
		text := sc.Text()
		if logical.Len() == 0 {
			start = lineNo
		}
		// A trailing backslash continues the line (pip's syntax).
		if strings.HasSuffix(text, "\\") {
			logical.WriteString(strings.TrimSuffix(text, "\\"))
			logical.WriteByte(' ')
			continue
		}
		logical.WriteString(text)
		line := logical.String()
		logical.Reset()
		reqs, err := parseRequirementLine(line, name, start, include)
		if err != nil {
			return nil, err
		}
		out = append(out, reqs...)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return out, nil
}

func parseRequirementLine(line, name string, lineNo int, include func(string) ([]Requirement, error)) ([]Requirement, error) {
	// Comments start at "#" preceded by whitespace or at the line start.
	if i := strings.Index(line, "#"); i == 0 || (i > 0 && (line[i-1] == ' ' || line[i-1] == '\t')) {
		line = line[:i]
	}
	line = strings.TrimSpace(line)
	if line == "" {
		return nil, nil
	}
	where := fmt.Sprintf("%s:%d", name, lineNo)
	if strings.HasPrefix(line, "-") {
		opt, arg, _ := strings.Cut(line, " ")
		if o, a, ok := strings.Cut(opt, "="); ok {
			opt, arg = o, a
		}
		arg = strings.TrimSpace(arg)
		switch opt {
		case "-r", "--requirement", "-c", "--constraint":
			reqs, err := include(arg)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			return reqs, nil
		case "-e", "--editable":
			return nil, fmt.Errorf("%s: editable requirement %q cannot be locked: replace it with a released version", where, arg)
		case "-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--no-binary", "--only-binary", "--prefer-binary", "--pre", "--trusted-host", "--no-index":
			// Index selection is bitpoll-install's --index-url, not the file's.
			return nil, nil
		default:
			return nil, fmt.Errorf("%s: unknown requirements option %q", where, opt)
		}
	}
	// Per-requirement options such as --hash follow the requirement.
	if i := strings.Index(line, " --"); i >= 0 {
		line = strings.TrimSpace(line[:i])
	}
	r, err := pep508.ParseRequirement(line)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if r.URL != "" {
		return nil, fmt.Errorf("%s: direct URL requirement %q cannot be locked from an index: publish it or drop it", where, line)
	}
	return []Requirement{{Requirement: r, File: name, Line: lineNo}}, nil
}
