package lockfile

import (
	"fmt"
	"sort"
	"strings"

	"github.com/bitpoll-install/bitpoll-install/suggest"
)

// Error is one problem in a lock, located by file, line and field path.
type Error struct {
	File string // the lock's file name, empty for an in-memory lock
	Line int    // 1-based, 0 when unknown
	// Path is the field, like "packages[3].wheels[1].hashes.sha256";
	// indexes count from 0 in file order.
	Path string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in a lock, in line order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the errors, so that errors.As finds each *Error.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// err returns l as an error, or nil when it is empty.
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// sortByLine orders errors by line, keeping the discovery order of errors
// on one line.
func (l ErrorList) sortByLine() {
	sort.SliceStable(l, func(i, j int) bool { return l[i].Line < l[j].Line })
}

// problems collects path-located errors while checking.
type problems struct{ list ErrorList }

func (p *problems) add(path, format string, args ...any) {
	p.list = append(p.list, &Error{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// didYouMean returns ` (did you mean "x"?)` for the allowed key closest to
// key, or "" when none is close.
func didYouMean(key string, allowed []string) string {
	best := suggest.Nearest(key, allowed, 3)
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}
