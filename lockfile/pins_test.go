package lockfile

import (
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/pyspec/pep508"
)

// TestCheckPins: pins missing from the lock, or locked at a version they
// exclude, are named; pins whose marker excludes every target, and
// build-only packages, are not taken for the app's.
func TestCheckPins(t *testing.T) {
	l := validLock(t)
	pin := func(s, where string) Pin {
		r, err := pep508.ParseRequirement(s)
		if err != nil {
			t.Fatal(err)
		}
		return Pin{Req: r, Where: where}
	}
	var pins []Pin
	for _, p := range l.Packages {
		if !p.BuildOnly {
			pins = append(pins, pin(p.Name+"=="+p.Version, "requirements.txt:1"))
		}
	}
	if err := l.CheckPins(pins); err != nil {
		t.Fatalf("CheckPins(the lock's own pins) = %v, want nil", err)
	}
	var buildOnly string
	for _, p := range l.Packages {
		if p.BuildOnly {
			buildOnly = p.Name + "==" + p.Version
		}
	}
	extra := []Pin{
		pin("whitenoise==6.7.0", "requirements.txt:12"),
		pin(pins[0].Req.Name+"==0.0.1", "requirements.txt:2"),
		pin(`pywin32==306; sys_platform == "win32"`, "requirements.txt:13"),
	}
	if buildOnly != "" {
		extra = append(extra, pin(buildOnly, "requirements.txt:14"))
	}
	err := l.CheckPins(append(pins, extra...))
	if err == nil {
		t.Fatal("CheckPins with missing pins = nil, want an error")
	}
	for _, want := range []string{"whitenoise==6.7.0 (requirements.txt:12) is missing", pins[0].Req.Name + "==0.0.1 (requirements.txt:2) is locked at "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("CheckPins error = %q, want it to contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "pywin32") {
		t.Errorf("CheckPins error = %q names a pin no target selects", err)
	}
	if buildOnly != "" && !strings.Contains(err.Error(), buildOnly+" (requirements.txt:14) is missing") {
		t.Errorf("CheckPins error = %q, want the build-only %s reported missing from the app's packages", err, buildOnly)
	}
}
