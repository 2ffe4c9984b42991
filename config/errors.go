package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/bitpoll-install/bitpoll-install/suggest"
	"github.com/bitpoll-install/bitpoll-install/tomlpos"
	"github.com/pelletier/go-toml/v2"
)

// decodeError turns go-toml's errors into *Errors with the file, line,
// key and a fix.
func (c *Config) decodeError(err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var errs []error
		for _, e := range strict.Errors {
			errs = append(errs, c.unknownKey(&e))
		}
		return errors.Join(errs...)
	}
	var de *toml.DecodeError
	if !errors.As(err, &de) {
		return &Error{File: c.file, Msg: err.Error()}
	}
	line, _ := de.Position()
	key := strings.Join(de.Key(), ".")
	msg := strings.TrimPrefix(de.Error(), "toml: ")
	if at, kind, want, ok := c.mismatch(de.Key()); ok {
		key, msg = at, fmt.Sprintf("is %s %s; want %s", article(kind), kind, want)
		if l := c.keys.Line(at); l > 0 {
			line = l
		}
	} else if key == "" {
		msg += "; fix the TOML syntax here"
	}
	return &Error{File: c.file, Line: line, Key: key, Msg: msg}
}

// mismatch finds the value at path, or the first element of the array
// there, whose TOML type (from the parser) the Config field cannot hold. It
// returns the value's key, its TOML type and what the field wants.
func (c *Config) mismatch(path []string) (at, kind, want string, ok bool) {
	t := fieldType(reflect.TypeFor[Config](), path)
	at = strings.Join(path, ".")
	kind = c.keys.Kind(at)
	if t == nil || kind == "" {
		return "", "", "", false
	}
	if !holds(t, kind) {
		return at, kind, tomlType(t), true
	}
	if t.Kind() == reflect.Slice {
		for i := 0; c.keys.Kind(tomlpos.Elem(at, i)) != ""; i++ {
			if k := c.keys.Kind(tomlpos.Elem(at, i)); !holds(t.Elem(), k) {
				return tomlpos.Elem(at, i), k, tomlType(t.Elem()), true
			}
		}
	}
	return "", "", "", false
}

// fieldType is the type of the field at path inside t, by TOML tag; nil
// when there is none.
func fieldType(t reflect.Type, path []string) reflect.Type {
	for _, key := range path {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Map:
			t = t.Elem()
		case reflect.Struct:
			var next reflect.Type
			for f := range t.Fields() {
				if name, _, _ := strings.Cut(f.Tag.Get("toml"), ","); name == key && f.IsExported() {
					next = f.Type
				}
			}
			if next == nil {
				return nil
			}
			t = next
		default:
			return nil
		}
	}
	return t
}

// holds reports whether a field of type t can hold a TOML value of kind
// (as tomlpos names it). Types it does not know hold anything.
func holds(t reflect.Type, kind string) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return kind == "integer"
	case reflect.String:
		return kind == "string"
	case reflect.Bool:
		return kind == "boolean"
	case reflect.Slice:
		return kind == "array"
	case reflect.Struct, reflect.Map, reflect.Pointer:
		return kind == "table"
	}
	return true
}

func article(word string) string {
	if strings.ContainsRune("aeiou", rune(word[0])) {
		return "an"
	}
	return "a"
}

// tomlType names a Go field type the way the file's author thinks of it.
func tomlType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return `an array of strings, like ["a", "b"]`
		}
		return "an array"
	case reflect.Struct, reflect.Map, reflect.Pointer:
		return "a table"
	}
	return t.String()
}

func (c *Config) unknownKey(e *toml.DecodeError) *Error {
	line, _ := e.Position()
	path := e.Key()
	key := strings.Join(path, ".")
	known := knownKeys(reflect.TypeFor[Config](), path[:len(path)-1])
	msg := "is not a known key"
	if len(path) > 1 {
		msg = fmt.Sprintf("is not a key of [%s]", strings.Join(path[:len(path)-1], "."))
	}
	if s := nearestKey(path[len(path)-1], known); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	} else if len(known) > 0 {
		msg += "; known keys: " + strings.Join(known, ", ")
	}
	if len(path) == 1 {
		msg += " (extra Django settings go in [django])"
	}
	return &Error{File: c.file, Line: line, Key: key, Msg: msg}
}

// knownKeys lists the keys of the table at path inside t, by TOML tag.
func knownKeys(t reflect.Type, path []string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		if len(path) > 0 && name == path[0] {
			return knownKeys(f.Type, path[1:])
		}
		keys = append(keys, name)
	}
	if len(path) > 0 {
		return nil
	}
	slices.Sort(keys)
	return keys
}

// nearestKey returns the known key closest to key, if it is close enough to
// be a typo: at most a third of its letters wrong, and at least one.
func nearestKey(key string, known []string) string {
	return suggest.Nearest(key, known, max(1, len(key)/3)+1)
}
