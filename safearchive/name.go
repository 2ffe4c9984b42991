package safearchive

import (
	"errors"
	"strings"
)

// CheckName refuses a member name that could land outside the directory
// an archive unpacks into, or that names a path in more than one way. name
// is slash-separated, as archives store it; one trailing slash (a
// directory) is allowed. Refused are an empty name, a NUL byte or a
// backslash (a separator elsewhere), an absolute path or a drive letter,
// a ".." element, and an empty or "." element. A reader that accepts a
// leading "./" strips it first. The error says why, without the name,
// which the caller adds.
func CheckName(name string) error {
	switch {
	case name == "" || name == "/":
		return errors.New("has an empty name")
	case strings.ContainsAny(name, "\\\x00"):
		return errors.New("contains a backslash or NUL byte")
	case strings.HasPrefix(name, "/"):
		return errors.New("is an absolute path; want paths inside the archive")
	case len(name) >= 2 && name[1] == ':':
		return errors.New("starts with a drive letter; want paths inside the archive")
	}
	for _, el := range strings.Split(strings.TrimSuffix(name, "/"), "/") {
		switch el {
		case "..":
			return errors.New(`escapes the archive with ".."`)
		case "", ".":
			return errors.New(`is not a clean path (empty or "." element)`)
		}
	}
	return nil
}
