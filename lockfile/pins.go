package lockfile

import (
	"fmt"
	"strings"

	"github.com/bitpoll-install/bitpoll-install/pyspec/pep440"
	"github.com/bitpoll-install/bitpoll-install/pyspec/pep508"
)

// Pin is one requirement of the app's own requirements file (App.Requirements
// inside the locked tree).
type Pin struct {
	Req   pep508.Requirement
	Where string // "requirements.txt:12", for messages
}

// CheckPins checks that l covers the app's requirements: each pin whose
// marker holds on one of l's targets names a package of l, not a
// build-only one, at a version the pin allows. The error names every pin
// that is missing or locked at another version.
func (l *Lock) CheckPins(pins []Pin) error {
	targets, err := l.ParsedTargets()
	if err != nil {
		return err
	}
	byName := make(map[string]*Package, len(l.Packages))
	for i := range l.Packages {
		if p := &l.Packages[i]; !p.BuildOnly {
			byName[pep508.NormalizeName(p.Name)] = p
		}
	}
	var bad []string
	for _, pin := range pins {
		applies := pin.Req.Marker == nil
		for _, t := range targets {
			applies = applies || pin.Req.Marker.Evaluate(pep508.LinuxCPython(t.Minor, t.Arch), nil)
		}
		if !applies {
			continue
		}
		want := pin.Req.Name + pin.Req.Specifiers.String()
		p, ok := byName[pep508.NormalizeName(pin.Req.Name)]
		if !ok {
			bad = append(bad, fmt.Sprintf("%s (%s) is missing", want, pin.Where))
			continue
		}
		v, err := pep440.Parse(p.Version)
		if err != nil || !pin.Req.Specifiers.Contains(v, true) {
			bad = append(bad, fmt.Sprintf("%s (%s) is locked at %s", want, pin.Where, p.Version))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("the lock does not cover the app's %s: %s; re-lock (bitpoll-install lock), or restore the lock if it was cut",
			l.App.Requirements, strings.Join(bad, ", "))
	}
	return nil
}
