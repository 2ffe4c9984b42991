package wheel

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/bitpoll-install/bitpoll-install/safearchive"
)

// archive is a wheel whose names, metadata and RECORD have been checked
// against each other, before anything is written.
type archive struct {
	name, version string
	distInfo      string // "name-version.dist-info"
	dataDir       string // "name-version.data"
	purelib       bool   // Root-Is-Purelib
	files         []*zip.File
	record        map[string]recordEntry
	recordBytes   []byte
	entryPoints   []entryPoint
}

// unrecorded reports whether name is RECORD itself or one of its
// signatures, which RECORD cannot list with a hash.
func (a *archive) unrecorded(name string) bool {
	switch name {
	case a.distInfo + "/RECORD", a.distInfo + "/RECORD.jws", a.distInfo + "/RECORD.p7s":
		return true
	}
	return false
}

// openArchive checks everything that can be checked without writing: member
// names and types, the dist-info name, WHEEL, RECORD against the members,
// the limits and the entry points.
func openArchive(wheelPath string, zr *zip.Reader, o Options) (*archive, error) {
	info, err := os.Stat(wheelPath)
	if err != nil {
		return nil, err
	}
	fname, fver, err := parseFilename(wheelPath)
	if err != nil {
		return nil, err
	}
	// Wheels hold regular files and directories only, and every member
	// counts against the limits before anything is written.
	policy := safearchive.Policy{
		Limits: safearchive.Limits{Ratio: o.MaxRatio, Ceiling: o.MaxSize, Files: o.MaxFiles},
		Label:  ErrUnsafe,
	}
	members, err := safearchive.Zip(zr, info.Size(), policy)
	if err != nil {
		var le *safearchive.LimitError
		var me *safearchive.MemberError
		switch {
		case errors.As(err, &le):
			return nil, fmt.Errorf("%w: %w", ErrLimit, err)
		case errors.As(err, &me):
			return nil, &MemberError{Member: me.Member, Err: me.Err}
		}
		return nil, err
	}
	a := &archive{}
	tops := make(map[string]bool)
	for _, m := range members {
		top, _, _ := strings.Cut(m.Path, "/")
		tops[top] = true
		if m.Type == safearchive.File { // directories are implied by the files in them
			a.files = append(a.files, m.Zip)
		}
	}
	sort.Slice(a.files, func(i, j int) bool { return a.files[i].Name < a.files[j].Name })

	if err := a.findDistInfo(tops, fname, fver); err != nil {
		return nil, err
	}
	byName := make(map[string]*zip.File, len(a.files))
	for _, f := range a.files {
		byName[f.Name] = f
	}
	wheelFile, err := readMember(byName, a.distInfo+"/WHEEL", true)
	if err != nil {
		return nil, err
	}
	if a.purelib, err = parseWheelFile(wheelFile); err != nil {
		return nil, &MemberError{Member: a.distInfo + "/WHEEL", Err: err}
	}
	if a.recordBytes, err = readMember(byName, a.distInfo+"/RECORD", true); err != nil {
		return nil, err
	}
	if err := a.checkRecord(byName); err != nil {
		return nil, err
	}
	eps, err := readMember(byName, a.distInfo+"/entry_points.txt", false)
	if err != nil {
		return nil, err
	}
	if a.entryPoints, err = parseEntryPoints(eps); err != nil {
		return nil, &MemberError{Member: a.distInfo + "/entry_points.txt", Err: err}
	}
	return a, nil
}

// findDistInfo requires exactly one top-level .dist-info directory, named
// after the project and version in the wheel's file name, and no .data
// directory with another name.
func (a *archive) findDistInfo(tops map[string]bool, fname, fver string) error {
	var found []string
	for t := range tops {
		if strings.HasSuffix(t, ".dist-info") {
			found = append(found, t)
		}
	}
	sort.Strings(found)
	want := fname + "-" + fver + ".dist-info"
	if len(found) != 1 {
		return fmt.Errorf("%w: found %d .dist-info directories %q, want exactly one, %q", ErrUnsafe, len(found), found, want)
	}
	a.distInfo = found[0]
	stem := strings.TrimSuffix(a.distInfo, ".dist-info")
	i := strings.LastIndex(stem, "-")
	if i < 0 || normalize(stem[:i]) != normalize(fname) || !sameVersion(stem[i+1:], fver) {
		return fmt.Errorf("%w: .dist-info directory %q does not match the wheel file name (want %q)", ErrUnsafe, a.distInfo, want)
	}
	a.name, a.version = stem[:i], stem[i+1:]
	a.dataDir = stem + ".data"
	for t := range tops {
		if strings.HasSuffix(t, ".data") && t != a.dataDir {
			return fmt.Errorf("%w: .data directory %q does not match %q", ErrUnsafe, t, a.dataDir)
		}
	}
	return nil
}

// checkRecord requires every member but RECORD and its signatures to be
// listed with hash and size, the zip header to agree on the size, and
// every listed file to be present.
func (a *archive) checkRecord(byName map[string]*zip.File) error {
	entries, err := parseRecord(bytes.NewReader(a.recordBytes))
	if err != nil {
		return &MemberError{Member: a.distInfo + "/RECORD", Err: err}
	}
	a.record = make(map[string]recordEntry, len(entries))
	for _, e := range entries {
		if a.unrecorded(e.Path) {
			continue
		}
		if byName[e.Path] == nil {
			return memberErr(e.Path, ErrRecord, "is listed in RECORD but missing from the wheel")
		}
		a.record[e.Path] = e
	}
	for _, f := range a.files {
		if a.unrecorded(f.Name) {
			continue
		}
		e, ok := a.record[f.Name]
		switch {
		case !ok:
			return memberErr(f.Name, ErrRecord, "is not listed in RECORD")
		case e.Hash == "" || e.Size < 0:
			return memberErr(f.Name, ErrRecord, "has no hash or size in RECORD")
		case uint64(e.Size) != f.UncompressedSize64:
			return memberErr(f.Name, ErrRecord, "zip header says %d bytes, RECORD says %d", f.UncompressedSize64, e.Size)
		}
	}
	return nil
}

// readMember reads a small metadata member into memory. A missing optional
// member reads as empty.
func readMember(byName map[string]*zip.File, name string, required bool) ([]byte, error) {
	f := byName[name]
	if f == nil {
		if required {
			return nil, memberErr(name, ErrUnsafe, "is missing; every wheel has one")
		}
		return nil, nil
	}
	if f.UncompressedSize64 > MaxMetadataSize {
		return nil, memberErr(name, ErrLimit, "is %d bytes, more than the %d allowed for metadata", f.UncompressedSize64, MaxMetadataSize)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, &MemberError{Member: name, Err: err}
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, MaxMetadataSize+1))
	if err != nil {
		return nil, &MemberError{Member: name, Err: fmt.Errorf("read: %w", err)}
	}
	if len(data) > MaxMetadataSize {
		return nil, memberErr(name, ErrLimit, "is larger than its zip header says")
	}
	return data, nil
}
