package lockfile

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/bitpoll-install/bitpoll-install/tomlpos"
	"github.com/pelletier/go-toml/v2"
)

// The keys each table allows, in the order Format writes them.
var (
	topKeys     = []string{"lock-version", "created-by", "requires-python", "glibc", "targets", "extra-requirements", "exclude-newer", "app", "packages", "interpreter"}
	appKeys     = []string{"name", "version", "url", "commit", "tree", "nar-hash", "requirements", "packages-digest"}
	packageKeys = []string{"name", "version", "marker", "requires-python", "build-only", "build-requires", "sdist", "sdist-targets", "wheels"}
	fileKeys    = []string{"name", "url", "size", "upload-time", "hashes"}
	hashKeys    = []string{"sha256"}

	interpreterKeys = []string{"target", "implementation", "version", "release", "url", "size", "glibc", "hashes"}
)

// ReadFile reads and parses the lock at path.
func ReadFile(path string) (*Lock, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read lock: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes and checks a lock. filename is used only in errors. The
// error, if any, is an ErrorList naming every problem found by line and
// field.
func Parse(data []byte, filename string) (*Lock, error) {
	var raw map[string]any
	if err := toml.Unmarshal(data, &raw); err != nil {
		e := &Error{File: filename, Line: 1, Msg: "invalid TOML: " + strings.TrimPrefix(err.Error(), "toml: ")}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			e.Line, _ = de.Position()
		}
		return nil, ErrorList{e}
	}
	keys := tomlpos.Parse(data)
	locate := func(list ErrorList) error {
		for _, e := range list {
			e.File = filename
			// A missing key is reported at its table; a missing top-level
			// key at the file as a whole.
			e.Line = max(keys.Nearest(e.Path), 1)
		}
		list.sortByLine()
		return list.err()
	}

	// A lock of another version may have other keys and rules: report
	// only the version.
	if msg := checkLockVersion(raw["lock-version"]); msg != "" {
		return nil, locate(ErrorList{{Path: "lock-version", Msg: msg}})
	}

	d := decoder{bad: map[string]bool{}}
	l := d.lock(raw)
	var list ErrorList
	list = append(list, d.list...)
	for _, e := range l.check() {
		if !d.covers(e.Path) {
			list = append(list, e)
		}
	}
	if err := locate(list); err != nil {
		return nil, err
	}
	return l, nil
}

// checkLockVersion explains what is wrong with a lock-version value, or
// returns "" when it is the one this package reads.
func checkLockVersion(v any) string {
	upgrade := fmt.Sprintf("this build reads lock-version %d only", Version)
	switch v := v.(type) {
	case nil:
		return fmt.Sprintf("missing required field (%s; put lock-version = %d first)", upgrade, Version)
	case int64:
		switch {
		case v == Version:
			return ""
		case v > Version:
			return fmt.Sprintf("lock-version %d is newer than this build reads (%s): upgrade bitpoll-install", v, upgrade)
		default:
			return fmt.Sprintf("lock-version %d is unknown (%s): re-create the lock with bitpoll-install", v, upgrade)
		}
	case string:
		return fmt.Sprintf("want the integer %d, got the string %q (a PEP 751 pylock.toml has lock-version \"1.0\"; this is not one)", Version, v)
	default:
		return fmt.Sprintf("want the integer %d, got %s", Version, typeName(v))
	}
}

// decoder turns the generic TOML tree into a Lock, reporting unknown keys
// and wrong types. The semantic checks are Lock.check's job.
type decoder struct {
	problems
	bad map[string]bool // paths already reported, whose later errors are noise
}

func (d *decoder) fail(path, format string, args ...any) {
	d.bad[path] = true
	d.add(path, format, args...)
}

// covers reports whether path is at or under a path already reported.
func (d *decoder) covers(path string) bool {
	for p := path; p != ""; p = parentPath(p) {
		if d.bad[p] {
			return true
		}
	}
	return false
}

// Paths name fields as tomlpos does, so that its index finds their lines.
var (
	join       = tomlpos.Join
	index      = tomlpos.Elem
	parentPath = tomlpos.Parent
)

func typeName(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", v)
	case int64:
		return fmt.Sprintf("the integer %d", v)
	case float64:
		return fmt.Sprintf("the float %v", v)
	case bool:
		return fmt.Sprintf("the boolean %v", v)
	case time.Time:
		return "an offset date-time"
	case toml.LocalDateTime:
		return "a local date-time (no time zone)"
	case toml.LocalDate:
		return "a local date"
	case toml.LocalTime:
		return "a local time"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

// table checks that v is a table holding only allowed keys.
func (d *decoder) table(path string, v any, allowed []string) map[string]any {
	m, ok := v.(map[string]any)
	if !ok {
		d.fail(path, "want a table, got %s", typeName(v))
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !contains(allowed, k) {
			d.fail(join(path, k), "unknown key %q%s; allowed here: %s", k, didYouMean(k, allowed), strings.Join(allowed, ", "))
		}
	}
	return m
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (d *decoder) str(m map[string]any, path, key string) string {
	v, ok := m[key]
	if !ok {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		d.fail(join(path, key), "want a string, got %s", typeName(v))
	}
	return s
}

func (d *decoder) boolean(m map[string]any, path, key string) bool {
	v, ok := m[key]
	if !ok {
		return false
	}
	b, ok := v.(bool)
	if !ok {
		d.fail(join(path, key), "want true or false, got %s", typeName(v))
	}
	return b
}

func (d *decoder) integer(m map[string]any, path, key string) int64 {
	v, ok := m[key]
	if !ok {
		return 0
	}
	n, ok := v.(int64)
	if !ok {
		d.fail(join(path, key), "want an integer, got %s", typeName(v))
	}
	return n
}

func (d *decoder) stringList(m map[string]any, path, key string) []string {
	v, ok := m[key]
	if !ok {
		return nil
	}
	a, ok := v.([]any)
	if !ok {
		d.fail(join(path, key), "want an array of strings, got %s", typeName(v))
		return nil
	}
	out := make([]string, 0, len(a))
	for i, x := range a {
		s, ok := x.(string)
		if !ok {
			// Keep a placeholder so that indexes stay those of the file.
			d.fail(index(join(path, key), i), "want a string, got %s", typeName(x))
		}
		out = append(out, s)
	}
	return out
}

// timestamp reads a date-time given either as a TOML offset date-time or
// as an RFC 3339 string, and returns it as a string for Lock.check.
func (d *decoder) timestamp(m map[string]any, path, key string) string {
	switch v := m[key].(type) {
	case nil:
		return ""
	case string:
		return v
	case time.Time:
		return v.Format(time.RFC3339Nano)
	default:
		d.fail(join(path, key), "want an RFC 3339 date-time with a time zone, like \"2026-05-06T12:00:00Z\", got %s", typeName(v))
		return ""
	}
}

func (d *decoder) lock(m map[string]any) *Lock {
	d.table("", m, topKeys)
	l := &Lock{
		LockVersion:       Version,
		CreatedBy:         d.str(m, "", "created-by"),
		RequiresPython:    d.str(m, "", "requires-python"),
		Glibc:             d.str(m, "", "glibc"),
		Targets:           d.stringList(m, "", "targets"),
		ExtraRequirements: d.stringList(m, "", "extra-requirements"),
		ExcludeNewer:      d.timestamp(m, "", "exclude-newer"),
	}
	if v, ok := m["app"]; ok {
		if a := d.table("app", v, appKeys); a != nil {
			l.App = App{
				Name:         d.str(a, "app", "name"),
				Version:      d.str(a, "app", "version"),
				URL:          d.str(a, "app", "url"),
				Commit:       d.str(a, "app", "commit"),
				Tree:         d.str(a, "app", "tree"),
				NarHash:      d.str(a, "app", "nar-hash"),
				Requirements: d.str(a, "app", "requirements"),

				PackagesDigest: d.str(a, "app", "packages-digest"),
			}
		}
	}
	if v, ok := m["packages"]; ok {
		list, ok := v.([]any)
		if !ok {
			d.fail("packages", "want an array of tables ([[packages]]), got %s", typeName(v))
		}
		for i, p := range list {
			l.Packages = append(l.Packages, d.pkg(index("packages", i), p))
		}
	}
	if v, ok := m["interpreter"]; ok {
		list, ok := v.([]any)
		if !ok {
			d.fail("interpreter", "want an array of tables ([[interpreter]]), got %s", typeName(v))
		}
		for i, it := range list {
			l.Interpreters = append(l.Interpreters, d.interpreter(index("interpreter", i), it))
		}
	}
	return l
}

func (d *decoder) pkg(path string, v any) Package {
	m := d.table(path, v, packageKeys)
	if m == nil {
		return Package{}
	}
	p := Package{
		Name:           d.str(m, path, "name"),
		Version:        d.str(m, path, "version"),
		Marker:         d.str(m, path, "marker"),
		RequiresPython: d.str(m, path, "requires-python"),
		BuildOnly:      d.boolean(m, path, "build-only"),
		BuildRequires:  d.stringList(m, path, "build-requires"),
	}
	if v, ok := m["sdist"]; ok {
		f := d.file(join(path, "sdist"), v)
		p.Sdist = &f
	}
	p.SdistTargets = d.stringList(m, path, "sdist-targets")
	if v, ok := m["wheels"]; ok {
		list, ok := v.([]any)
		if !ok {
			d.fail(join(path, "wheels"), "want an array of tables ([[packages.wheels]]), got %s", typeName(v))
		}
		for i, w := range list {
			p.Wheels = append(p.Wheels, d.file(index(join(path, "wheels"), i), w))
		}
	}
	return p
}

func (d *decoder) file(path string, v any) File {
	m := d.table(path, v, fileKeys)
	if m == nil {
		return File{}
	}
	f := File{
		Name:       d.str(m, path, "name"),
		URL:        d.str(m, path, "url"),
		Size:       d.integer(m, path, "size"),
		UploadTime: d.timestamp(m, path, "upload-time"),
	}
	if v, ok := m["hashes"]; ok {
		if h := d.table(join(path, "hashes"), v, hashKeys); h != nil {
			f.SHA256 = d.str(h, join(path, "hashes"), "sha256")
		}
	}
	return f
}
