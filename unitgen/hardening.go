package unitgen

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"

	"github.com/pelletier/go-toml/v2"
)

// hardeningTOML is the hardening profile, shared with the NixOS module.
//
//go:embed hardening.toml
var hardeningTOML []byte

// Directive is one [Service] line of the hardening profile, or several
// lines when the directive is a list.
type Directive struct {
	Name   string
	Values []string // one line each; bools are "true" or "false"
	Why    string
}

// Hardening returns the embedded hardening profile in file order.
func Hardening() ([]Directive, error) {
	return parseHardening(hardeningTOML)
}

// parseHardening reads a profile: [[service]] tables with name, value
// (string, bool or array of strings) and why.
func parseHardening(data []byte) ([]Directive, error) {
	var file struct {
		Service []struct {
			Name  string
			Value any
			Why   string
		}
	}
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return nil, fmt.Errorf("parse hardening profile: %w", err)
	}
	var out []Directive
	var errs []error
	bad := func(i int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("parse hardening profile: service[%d]: %s", i, fmt.Sprintf(format, args...)))
	}
	for i, s := range file.Service {
		d := Directive{Name: s.Name, Why: s.Why}
		switch v := s.Value.(type) {
		case string:
			d.Values = []string{v}
		case bool:
			d.Values = []string{fmt.Sprint(v)}
		case []any:
			for _, e := range v {
				str, ok := e.(string)
				if !ok {
					bad(i, "value element %v of %q is a %T; want a string", e, s.Name, e)
					continue
				}
				d.Values = append(d.Values, str)
			}
			if len(v) == 0 {
				bad(i, "value of %q is an empty array; write \"\" to reset the directive", s.Name)
			}
		case nil:
			bad(i, "%q has no value; want a string, a bool or an array of strings", s.Name)
		default:
			bad(i, "value of %q is a %T; want a string, a bool or an array of strings", s.Name, v)
		}
		if !directiveName.MatchString(s.Name) {
			bad(i, "name %q is not a directive name like \"ProtectSystem\"", s.Name)
		}
		if s.Why == "" {
			bad(i, "%q has no why; every directive says why it is there", s.Name)
		}
		for _, v := range d.Values {
			if err := checkValue(v); err != nil {
				bad(i, "%s: %v", s.Name, err)
			}
		}
		out = append(out, d)
	}
	if len(file.Service) == 0 {
		errs = append(errs, errors.New("parse hardening profile: no [[service]] tables"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
