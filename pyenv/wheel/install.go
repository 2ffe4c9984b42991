package wheel

import (
	"archive/zip"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Install installs the wheel at wheelPath into the directories of s and
// returns what it installed. On any error nothing it created is left.
// Files that already exist are never overwritten: installing over another
// distribution is an error.
func Install(wheelPath string, s Scheme, o Options) (*Result, error) {
	res, err := install(wheelPath, s, o.withDefaults())
	if err != nil {
		return nil, fmt.Errorf("install wheel %q: %w", wheelPath, err)
	}
	return res, nil
}

// target is one member and where it goes.
type target struct {
	f      *zip.File
	dst    string
	mode   fs.FileMode
	script bool // from .data/scripts: "#!python" is rewritten
}

func install(wheelPath string, s Scheme, o Options) (res *Result, err error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	zr, err := zip.OpenReader(wheelPath)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	a, err := openArchive(wheelPath, &zr.Reader, o)
	if err != nil {
		return nil, err
	}
	lib := s.Platlib
	if a.purelib {
		lib = s.Purelib
	}
	targets, err := a.targets(s, lib)
	if err != nil {
		return nil, err
	}
	needPython := len(a.entryPoints) > 0
	for _, tg := range targets {
		needPython = needPython || tg.script
	}
	if needPython {
		if err := checkPython(o.Python); err != nil {
			return nil, err
		}
	}
	// Every path this install writes, to catch collisions before writing.
	dsts := make(map[string]string)
	claim := func(dst, what string) error {
		if other, ok := dsts[dst]; ok {
			return memberErr(what, ErrUnsafe, "installs to %q, as %q does", dst, other)
		}
		dsts[dst] = what
		return nil
	}
	for _, tg := range targets {
		if err := claim(tg.dst, tg.f.Name); err != nil {
			return nil, err
		}
	}
	for _, ep := range a.entryPoints {
		if err := claim(filepath.Join(s.Scripts, ep.Name), a.distInfo+"/entry_points.txt"); err != nil {
			return nil, err
		}
	}
	recordPath := filepath.Join(lib, a.distInfo, "RECORD")
	installerPath := filepath.Join(lib, a.distInfo, "INSTALLER")
	if err := claim(recordPath, a.distInfo+"/RECORD"); err != nil {
		return nil, err
	}
	if o.Installer != "" {
		if err := claim(installerPath, a.distInfo+"/INSTALLER"); err != nil {
			return nil, err
		}
	}
	for dst, what := range dsts {
		for d := filepath.Dir(dst); d != filepath.Dir(d); d = filepath.Dir(d) {
			if other, ok := dsts[d]; ok {
				return nil, memberErr(what, ErrUnsafe, "installs below %q, which %q installs as a file", d, other)
			}
		}
	}
	if o.Unpacked != "" {
		got, err := os.ReadFile(filepath.Join(o.Unpacked, "RECORD"))
		if err != nil || !bytes.Equal(got, a.recordBytes) {
			return nil, fmt.Errorf("Options.Unpacked %q does not hold this wheel (its RECORD differs or is missing): unpack the wheel again", o.Unpacked)
		}
	}
	link := o.Link
	if link == nil {
		link = os.Link
	}

	t := newTracker()
	defer func() {
		if err != nil {
			t.undo()
		}
	}()
	dirs := make([]string, 0, len(targets)+len(a.entryPoints)+2)
	for _, tg := range targets {
		dirs = append(dirs, tg.dst)
	}
	dirs = append(dirs, recordPath)
	if len(a.entryPoints) > 0 {
		dirs = append(dirs, filepath.Join(s.Scripts, a.entryPoints[0].Name))
	}
	if err := t.mkdirs(dirs, o.Workers); err != nil {
		return nil, err
	}
	done := make([]written, len(targets))
	err = forEach(len(targets), o.Workers, func(i int) error {
		tg := targets[i]
		w, err := a.place(t, tg, o, link)
		if err != nil {
			if errors.Is(err, fs.ErrExist) {
				return existsError(tg.f.Name, tg.dst, s.Purelib, s.Platlib)
			}
			var me *MemberError
			if !errors.As(err, &me) {
				err = &MemberError{Member: tg.f.Name, Err: err}
			}
			return err
		}
		done[i] = w
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, ep := range a.entryPoints {
		w, err := t.writeBytes(filepath.Join(s.Scripts, ep.Name), 0o755, launcher(o.Python, ep))
		if err != nil {
			if errors.Is(err, fs.ErrExist) {
				return nil, existsError(ep.Name, filepath.Join(s.Scripts, ep.Name), s.Purelib, s.Platlib)
			}
			return nil, &MemberError{Member: ep.Name, Err: err}
		}
		done = append(done, w)
	}
	if o.Installer != "" {
		w, err := t.writeBytes(installerPath, 0o644, []byte(o.Installer+"\n"))
		if err != nil {
			return nil, err
		}
		done = append(done, w)
	}
	rows := []recordEntry{{Path: relSlash(lib, recordPath), Size: -1}}
	for _, w := range done {
		rows = append(rows, recordEntry{Path: relSlash(lib, w.dst), Hash: formatHash("sha256", w.sha256), Size: w.size})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Path < rows[j].Path })
	record, err := formatRecord(rows)
	if err != nil {
		return nil, fmt.Errorf("write RECORD: %w", err)
	}
	if _, err := t.writeBytes(recordPath, 0o644, record); err != nil {
		return nil, err
	}
	res = &Result{Name: a.name, Version: a.version}
	for _, w := range done {
		res.Files = append(res.Files, relSlash(s.Data, w.dst))
	}
	res.Files = append(res.Files, relSlash(s.Data, recordPath))
	sort.Strings(res.Files)
	return res, nil
}

// place writes one member, from the zip or from the unpacked tree.
func (a *archive) place(t *tracker, tg target, o Options, link func(src, dst string) error) (written, error) {
	want, ok := a.record[tg.f.Name]
	if !ok { // a signature file: unverified, bounded by its header
		want = recordEntry{Size: int64(tg.f.UncompressedSize64)}
	}
	python := ""
	if tg.script {
		python = o.Python
	}
	if o.Unpacked != "" {
		src := filepath.Join(o.Unpacked, a.unpackedName(tg.f))
		if !tg.script && want.Hash != "" {
			return t.linkFile(link, src, tg.dst, tg.mode, want)
		}
		f, err := os.Open(src)
		if err != nil {
			return written{}, fmt.Errorf("unpacked copy: %w", err)
		}
		defer f.Close()
		return t.writeFile(tg.dst, tg.mode, f, want, python)
	}
	rc, err := tg.f.Open()
	if err != nil {
		return written{}, err
	}
	defer rc.Close()
	return t.writeFile(tg.dst, tg.mode, rc, want, python)
}

// targets maps the members to their destinations: the root to lib and each
// .data/<key>/ subtree to the scheme directory named by key. RECORD is left
// out, since it is written anew.
func (a *archive) targets(s Scheme, lib string) ([]target, error) {
	dirs := map[string]string{
		"purelib": s.Purelib, "platlib": s.Platlib, "scripts": s.Scripts,
		"headers": s.Headers, "data": s.Data,
	}
	var out []target
	for _, f := range a.files {
		if f.Name == a.distInfo+"/RECORD" {
			continue
		}
		tg := target{f: f, dst: filepath.Join(lib, filepath.FromSlash(f.Name)), mode: fileMode(f)}
		if rest, ok := strings.CutPrefix(f.Name, a.dataDir+"/"); ok {
			key, sub, _ := strings.Cut(rest, "/")
			base, known := dirs[key]
			switch {
			case !known:
				return nil, memberErr(f.Name, ErrUnsafe, "is in .data directory %q, want purelib, platlib, scripts, headers or data", key)
			case sub == "":
				return nil, memberErr(f.Name, ErrUnsafe, "is a file where a .data directory belongs")
			}
			tg.dst = filepath.Join(base, filepath.FromSlash(sub))
			if key == "scripts" {
				tg.script, tg.mode = true, 0o755 // the format asks installers to add +x
			}
		}
		out = append(out, tg)
	}
	return out, nil
}

// fileMode keeps only the executable bits of the zip's Unix mode, so that
// the same wheel always gives the same modes.
func fileMode(f *zip.File) fs.FileMode {
	if f.Mode()&0o111 != 0 {
		return 0o755
	}
	return 0o644
}

func relSlash(base, p string) string {
	rel, err := filepath.Rel(base, p)
	if err != nil {
		return filepath.ToSlash(p)
	}
	return filepath.ToSlash(rel)
}

// Unpack extracts the members of the wheel at wheelPath, each checked
// against RECORD, into dir, which must not exist. The directory is flat:
// a member is stored under its RECORD hash and executable bit (see
// unpackedName), once however many members share that content, and RECORD
// under its own name. A wheel such as Django spreads its files over
// thousands of directories, and creating those costs more than the files.
// The tree is built beside dir and renamed into place, so dir is either
// complete or absent. Install with Options.Unpacked then links files from
// it.
func Unpack(wheelPath, dir string, o Options) (*Result, error) {
	res, err := unpack(wheelPath, dir, o.withDefaults())
	if err != nil {
		return nil, fmt.Errorf("unpack wheel %q: %w", wheelPath, err)
	}
	return res, nil
}

// unpackedName is where Unpack stores member f: "sha256-<hex>" for a file
// RECORD hashes, with "-x" when it is executable; RECORD and its
// signatures, which RECORD cannot hash, keep their base names.
func (a *archive) unpackedName(f *zip.File) string {
	e, ok := a.record[f.Name]
	if !ok || e.Hash == "" {
		return path.Base(f.Name)
	}
	algo, digest, _ := parseHash(e.Hash) // checked by parseRecord
	name := algo + "-" + hex.EncodeToString(digest)
	if fileMode(f)&0o111 != 0 {
		name += "-x"
	}
	return name
}

func unpack(wheelPath, dir string, o Options) (res *Result, err error) {
	if _, err := os.Lstat(dir); err == nil {
		return nil, fmt.Errorf("%w: %q already exists; reuse it or delete it first", ErrExists, dir)
	}
	zr, err := zip.OpenReader(wheelPath)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	a, err := openArchive(wheelPath, &zr.Reader, o)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".partial-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	t := newTracker()
	t.present[tmp] = true
	res = &Result{Name: a.name, Version: a.version}
	// Members that share content and mode share one file; the first
	// writes it, and it is checked against RECORD as it is written.
	var members []*zip.File
	taken := make(map[string]bool)
	for _, f := range a.files {
		res.Files = append(res.Files, path.Clean(f.Name))
		if name := a.unpackedName(f); !taken[name] {
			taken[name] = true
			members = append(members, f)
		}
	}
	// zip.File.Open may be called concurrently: each reader has its own
	// section of the file.
	err = forEach(len(members), o.Workers, func(i int) error {
		f := members[i]
		want, ok := a.record[f.Name]
		if !ok {
			want = recordEntry{Size: int64(f.UncompressedSize64)}
		}
		rc, err := f.Open()
		if err != nil {
			return &MemberError{Member: f.Name, Err: err}
		}
		defer rc.Close()
		if _, err := t.writeFile(filepath.Join(tmp, a.unpackedName(f)), fileMode(f), rc, want, ""); err != nil {
			return &MemberError{Member: f.Name, Err: err}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	return res, nil
}
