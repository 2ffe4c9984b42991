package lockfile

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bitpoll-install/bitpoll-install/pyspec/wheeltag"
)

// ExportPylock returns a PEP 751 pylock.toml that installs, on target t,
// exactly the files l selects for t: one wheel per package (or its sdist),
// build-only packages left out. Its environments marker names t, so an
// installer refuses it elsewhere.
func ExportPylock(l *Lock, t wheeltag.Target) ([]byte, error) {
	if !slices.Contains(l.Targets, t.String()) {
		return nil, fmt.Errorf("export pylock: %s is not a target of the lock (have %s)", t, strings.Join(l.Targets, ", "))
	}
	sel, err := l.ForTarget(t)
	if err != nil {
		return nil, fmt.Errorf("export pylock: %w", err)
	}
	slices.SortStableFunc(sel, func(a, b Selected) int { return strings.Compare(a.Package.Name, b.Package.Name) })

	var w writer
	w.line("# Exported by bitpoll-install from the bitpoll.lock of " + l.App.Name + " " + l.App.Version + " for " + t.String() + ".")
	w.str("lock-version", "1.0")
	w.array("environments", []string{targetMarker(t)})
	w.optStr("requires-python", l.RequiresPython)
	w.line("extras = []")
	w.line("dependency-groups = []")
	w.line("default-groups = []")
	w.str("created-by", l.CreatedBy)
	for _, s := range sel {
		p := s.Package
		w.table("[[packages]]")
		w.str("name", p.Name)
		w.str("version", p.Version)
		w.optStr("marker", p.Marker)
		w.optStr("requires-python", p.RequiresPython)
		if s.IsSdist {
			w.line("sdist = " + pylockFile(&s.File))
			continue
		}
		f := s.File
		w.table("[[packages.wheels]]")
		w.str("name", f.Name)
		if f.UploadTime != "" {
			w.line("upload-time = " + mustTime(f.UploadTime))
		}
		w.str("url", f.URL)
		w.int("size", f.Size)
		w.line("hashes = { sha256 = " + quote(f.SHA256) + " }")
	}
	return w.buf.Bytes(), nil
}

// targetMarker is the PEP 508 marker that holds on t and nowhere else the
// lock could be used.
func targetMarker(t wheeltag.Target) string {
	return fmt.Sprintf(`sys_platform == "linux" and platform_machine == %q and implementation_name == "cpython" and python_version == %q`,
		t.Arch, t.PythonVersion())
}

// pylockFile writes f as a PEP 751 file table, keys in the order of the
// specification; upload-time is a TOML date-time there.
func pylockFile(f *File) string {
	parts := []string{"name = " + quote(f.Name)}
	if f.UploadTime != "" {
		parts = append(parts, "upload-time = "+mustTime(f.UploadTime))
	}
	parts = append(parts, "url = "+quote(f.URL), fmt.Sprintf("size = %d", f.Size), "hashes = { sha256 = "+quote(f.SHA256)+" }")
	return "{ " + strings.Join(parts, ", ") + " }"
}
