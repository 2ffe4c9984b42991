package wheel

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testarchive"
)

// zfile is one member of a generated wheel.
type zfile struct {
	name string
	body string
	mode fs.FileMode // 0 means 0644; may carry fs.ModeSymlink
	// noRecord leaves the member out of the generated RECORD.
	noRecord bool
	// headerSize, if set, is written as the zip header's uncompressed size
	// (and RECORD's), though body is longer.
	headerSize int64
}

// wheelSpec describes a wheel to generate. Zero fields get the defaults of
// a small valid pure-Python wheel "demo 1.0".
type wheelSpec struct {
	filename string  // default "demo-1.0-py3-none-any.whl"
	distInfo string  // default "demo-1.0.dist-info"
	files    []zfile // besides WHEEL and RECORD
	wheel    *string // WHEEL body; nil means version 1.0, purelib
	noWheel  bool
	// record edits the generated RECORD rows; rawRecord replaces them.
	record    func([]recordEntry) []recordEntry
	rawRecord *string
}

func recordRow(f zfile) recordEntry {
	sum := sha256.Sum256([]byte(f.body))
	size := int64(len(f.body))
	if f.headerSize != 0 {
		size = f.headerSize
	}
	return recordEntry{Path: f.name, Hash: formatHash("sha256", sum[:]), Size: size}
}

// build writes the wheel into dir and returns its path.
func (w wheelSpec) build(t testing.TB, dir string) string {
	t.Helper()
	if w.filename == "" {
		w.filename = "demo-1.0-py3-none-any.whl"
	}
	if w.distInfo == "" {
		w.distInfo = "demo-1.0.dist-info"
	}
	files := append([]zfile(nil), w.files...)
	if !w.noWheel {
		body := "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
		if w.wheel != nil {
			body = *w.wheel
		}
		files = append(files, zfile{name: w.distInfo + "/WHEEL", body: body})
	}
	var rows []recordEntry
	for _, f := range files {
		if !f.noRecord && !strings.HasSuffix(f.name, "/") {
			rows = append(rows, recordRow(f))
		}
	}
	rows = append(rows, recordEntry{Path: w.distInfo + "/RECORD", Size: -1})
	if w.record != nil {
		rows = w.record(rows)
	}
	rec, err := formatRecord(rows)
	if err != nil {
		t.Fatal(err)
	}
	if w.rawRecord != nil {
		rec = []byte(*w.rawRecord)
	}
	files = append(files, zfile{name: w.distInfo + "/RECORD", body: string(rec)})

	ms := make([]testarchive.Member, 0, len(files))
	for _, f := range files {
		m := testarchive.Member{Name: f.name, Body: f.body, Mode: f.mode.Perm(), ClaimSize: f.headerSize}
		switch {
		case strings.HasSuffix(f.name, "/"):
			m.Dir, m.Body, m.Mode = true, "", 0
		case f.mode&fs.ModeSymlink != 0:
			m.Symlink, m.Body = f.body, ""
		case f.mode&fs.ModeNamedPipe != 0:
			m.Fifo = true
		}
		ms = append(ms, m)
	}
	return testarchive.Write(t, filepath.Join(dir, w.filename), testarchive.Zip(t, ms...))
}

// venvScheme is a venv-like layout under root, with platlib apart from
// purelib so that tests can tell them apart.
func venvScheme(root string) Scheme {
	return Scheme{
		Purelib: filepath.Join(root, "lib", "python3.11", "site-packages"),
		Platlib: filepath.Join(root, "lib64", "python3.11", "site-packages"),
		Scripts: filepath.Join(root, "bin"),
		Headers: filepath.Join(root, "include", "site", "python3.11", "demo"),
		Data:    root,
	}
}

// snapshot lists every file and directory under root with its mode and,
// for files, a digest of the content, one per line.
func snapshot(t testing.TB, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		line := fmt.Sprintf("%v %s", fi.Mode(), filepath.ToSlash(rel))
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %x", sha256.Sum256(data))
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
