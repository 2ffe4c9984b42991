package wheel

import (
	"github.com/bitpoll-install/bitpoll-install/workers"

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
	"sync"
	"syscall"
)

// Install installs the wheel at wheelPath into the directories of s and
// returns what it installed. On any error nothing it created is left.
// Files that already exist are never overwritten: installing over another
// distribution is an error. Errors name the wheel by its file name, not
// its path, which may be a temporary link: the caller names where the
// wheel came from.
func Install(wheelPath string, s Scheme, o Options) (*Result, error) {
	res, err := install(wheelPath, s, o.withDefaults())
	if err != nil {
		return nil, fmt.Errorf("install wheel %q: %w", filepath.Base(wheelPath), err)
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
	var sink *unpackSink
	switch {
	case o.Unpacked != "" && o.UnpackTo != "":
		return nil, errors.New("Options.Unpacked and Options.UnpackTo are both set: give one")
	case o.UnpackTo != "":
		if sink, err = newUnpackSink(o.UnpackTo); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				sink.discard()
			}
		}()
	case o.Unpacked != "":
		got, err := os.ReadFile(filepath.Join(o.Unpacked, "RECORD"))
		if err != nil || !bytes.Equal(got, a.recordBytes) {
			return nil, fmt.Errorf("%w: %q does not hold this wheel (its RECORD differs or is missing): delete it and unpack the wheel again", ErrDamaged, o.Unpacked)
		}
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
	err = workers.ForEach(len(targets), o.Workers, func(i int) error {
		tg := targets[i]
		w, err := a.place(t, tg, o, sink)
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
		if o.Placed != nil {
			o.Placed(tg.dst)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if sink != nil {
		if err := sink.finish(a, o.Workers); err != nil {
			return nil, err
		}
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

// place writes one member, from the zip or from the unpacked tree, which
// sink, when set, is filling. A member from an unpacked tree is copied,
// never linked, and checked against RECORD on the way.
func (a *archive) place(t *tracker, tg target, o Options, sink *unpackSink) (written, error) {
	want := a.want(tg.f)
	python := ""
	if tg.script {
		python = o.Python
	}
	src := ""
	switch {
	case o.Unpacked != "":
		src = filepath.Join(o.Unpacked, a.unpackedName(tg.f))
	case sink != nil:
		var err error
		if src, err = sink.write(a, tg.f); err != nil {
			return written{}, err
		}
	}
	if src != "" {
		f, err := os.Open(src)
		if err != nil {
			if o.Unpacked != "" && errors.Is(err, fs.ErrNotExist) {
				return written{}, fmt.Errorf("%w: unpacked copy %q is missing: delete %q and unpack the wheel again", ErrDamaged, src, o.Unpacked)
			}
			return written{}, fmt.Errorf("unpacked copy: %w", err)
		}
		defer f.Close()
		w, err := t.writeFile(tg.dst, tg.mode, f, want, python)
		if err != nil && o.Unpacked != "" && errors.Is(err, ErrRecord) {
			// The wheel's RECORD is right; the copy in the tree is not.
			return w, fmt.Errorf("%w: unpacked copy %q: %v: delete %q and unpack the wheel again",
				ErrDamaged, src, strings.TrimPrefix(err.Error(), ErrRecord.Error()+": "), o.Unpacked)
		}
		return w, err
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
// complete or absent. Install with Options.Unpacked then copies files
// from it, each checked against RECORD.
func Unpack(wheelPath, dir string, o Options) (*Result, error) {
	res, err := unpack(wheelPath, dir, o.withDefaults())
	if err != nil {
		return nil, fmt.Errorf("unpack wheel %q: %w", filepath.Base(wheelPath), err)
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
	zr, err := zip.OpenReader(wheelPath)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	a, err := openArchive(wheelPath, &zr.Reader, o)
	if err != nil {
		return nil, err
	}
	sink, err := newUnpackSink(dir)
	if err != nil {
		return nil, err
	}
	if err := sink.finish(a, o.Workers); err != nil {
		sink.discard()
		return nil, err
	}
	res = &Result{Name: a.name, Version: a.version}
	for _, f := range a.files {
		res.Files = append(res.Files, path.Clean(f.Name))
	}
	return res, nil
}

// want is what RECORD says of member f; a signature file, which RECORD
// cannot list, is bounded by its zip header and not hashed.
func (a *archive) want(f *zip.File) recordEntry {
	if e, ok := a.record[f.Name]; ok {
		return e
	}
	return recordEntry{Size: int64(f.UncompressedSize64)}
}

// unpackSink builds an unpacked tree (see Unpack) beside its final name.
// Members that share content and mode share one file: the first to need
// it writes it, checked against RECORD as it is written, and the others
// wait for that.
type unpackSink struct {
	dir, tmp string
	t        *tracker
	mu       sync.Mutex
	files    map[string]*sinkFile
}

type sinkFile struct {
	once sync.Once
	err  error
}

func newUnpackSink(dir string) (*unpackSink, error) {
	if _, err := os.Lstat(dir); err == nil {
		return nil, fmt.Errorf("%w: %q already exists; reuse it or delete it first", ErrExists, dir)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".partial-")
	if err != nil {
		return nil, err
	}
	t := newTracker()
	t.present[tmp] = true
	return &unpackSink{dir: dir, tmp: tmp, t: t, files: make(map[string]*sinkFile)}, nil
}

// write makes sure member f is in the tree and returns its path there.
func (u *unpackSink) write(a *archive, f *zip.File) (string, error) {
	name := a.unpackedName(f)
	u.mu.Lock()
	sf := u.files[name]
	if sf == nil {
		sf = &sinkFile{}
		u.files[name] = sf
	}
	u.mu.Unlock()
	dst := filepath.Join(u.tmp, name)
	sf.once.Do(func() {
		rc, err := f.Open()
		if err != nil {
			sf.err = &MemberError{Member: f.Name, Err: err}
			return
		}
		defer rc.Close()
		if _, err := u.t.writeFile(dst, fileMode(f), rc, a.want(f), ""); err != nil {
			sf.err = &MemberError{Member: f.Name, Err: err}
		}
	})
	return dst, sf.err
}

// finish writes the members nothing has asked for yet (RECORD, and all
// of them when unpacking alone) and renames the tree into place. A tree
// another build put there first is as good: this one is dropped, and
// links already made from it stay valid.
func (u *unpackSink) finish(a *archive, goroutines int) error {
	if err := workers.ForEach(len(a.files), goroutines, func(i int) error {
		_, err := u.write(a, a.files[i])
		return err
	}); err != nil {
		return err
	}
	if err := os.Chmod(u.tmp, 0o755); err != nil {
		return err
	}
	if err := os.Rename(u.tmp, u.dir); err != nil {
		if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
			return os.RemoveAll(u.tmp)
		}
		return err
	}
	return nil
}

// discard removes the unfinished tree.
func (u *unpackSink) discard() { os.RemoveAll(u.tmp) }
