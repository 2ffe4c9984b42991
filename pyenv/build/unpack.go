package build

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/bitpoll-install/bitpoll-install/archivecheck"
)

// ErrUnsafe marks an sdist refused because unpacking it could write
// outside its directory, or past the limits.
var ErrUnsafe = errors.New("unsafe sdist")

// unsafef returns an ErrUnsafe error about one member.
func unsafef(member, format string, args ...any) error {
	return fmt.Errorf("%w: member %q: %s", ErrUnsafe, member, fmt.Sprintf(format, args...))
}

// unpackSdist extracts the archive at path (.tar.gz or .zip, told apart by
// content) into the empty directory dst and returns the path of its single
// top-level directory. Members count against archivecheck's default limits
// before they are written.
func unpackSdist(path, dst string) (string, error) {
	return unpackLimited(path, dst, archivecheck.Default())
}

func unpackLimited(path, dst string, lim archivecheck.Limits) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", err
	}
	br := bufio.NewReader(f)
	magic, _ := br.Peek(4)
	x := &extractor{root: dst, budget: lim.Budget(info.Size())}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		err = x.tarGz(br)
	case bytes.HasPrefix(magic, []byte("PK\x03\x04")):
		err = x.zip(f, info.Size())
	default:
		return "", fmt.Errorf("%q is neither a .tar.gz nor a .zip archive; sdists come in one of those", filepath.Base(path))
	}
	if err != nil {
		return "", err
	}
	top := filepath.Join(dst, x.top)
	if fi, err := os.Lstat(top); x.top == "" || err != nil || !fi.IsDir() {
		return "", errors.New("archive has no top directory; an sdist holds one <name>-<version>/ directory")
	}
	return top, nil
}

// extractor writes members below root. It never writes through a symbolic
// link: every parent of a member must be a real directory, so a link made
// by an earlier member cannot redirect a later one.
type extractor struct {
	root   string
	top    string // the single top-level directory
	budget *archivecheck.Budget
}

func (x *extractor) tarGz(r io.Reader) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("read gzip: %w", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		switch h.Typeflag {
		case tar.TypeXGlobalHeader:
			continue
		case tar.TypeDir:
			err = x.dir(h.Name)
		case tar.TypeReg: // the reader reports old-style regular files (TypeRegA) as TypeReg
			err = x.file(h.Name, h.FileInfo().Mode(), h.Size, tr)
		case tar.TypeSymlink:
			err = x.symlink(h.Name, h.Linkname)
		case tar.TypeLink:
			err = x.hardlink(h.Name, h.Linkname)
		default:
			err = unsafef(h.Name, "is a special file (tar type %q); want files, directories and links", h.Typeflag)
		}
		if err != nil {
			return err
		}
	}
}

func (x *extractor) zip(r io.ReaderAt, size int64) error {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return fmt.Errorf("read zip: %w", err)
	}
	for _, f := range zr.File {
		mode := f.Mode()
		switch {
		case mode.IsDir() || strings.HasSuffix(f.Name, "/"):
			err = x.dir(f.Name)
		case mode&fs.ModeSymlink != 0:
			err = x.zipSymlink(f)
		case mode.IsRegular():
			err = x.zipFile(f)
		default:
			err = unsafef(f.Name, "is a special file (mode %v); want files, directories and links", mode)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (x *extractor) zipFile(f *zip.File) error {
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("member %q: %w", f.Name, err)
	}
	defer rc.Close()
	// The header's size is only a claim; file() reads one byte past it.
	return x.file(f.Name, f.Mode(), int64(min(f.UncompressedSize64, 1<<62)), rc)
}

func (x *extractor) zipSymlink(f *zip.File) error {
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("member %q: %w", f.Name, err)
	}
	defer rc.Close()
	target, err := io.ReadAll(io.LimitReader(rc, 4097))
	if err != nil {
		return fmt.Errorf("member %q: %w", f.Name, err)
	}
	if len(target) > 4096 {
		return unsafef(f.Name, "link target is longer than 4096 bytes")
	}
	return x.symlink(f.Name, string(target))
}

// member checks a member name, counts it with the size it declares, and
// returns its slash-separated clean form.
func (x *extractor) member(name string, size int64) (string, error) {
	clean := strings.TrimSuffix(strings.TrimPrefix(name, "./"), "/")
	if err := archivecheck.CheckName(clean); err != nil {
		return "", unsafef(name, "%v", err)
	}
	parts := strings.Split(clean, "/")
	if x.top == "" {
		x.top = parts[0]
	} else if parts[0] != x.top {
		return "", fmt.Errorf("%w: members %q and %q lie in different top directories; an sdist has exactly one", ErrUnsafe, x.top+"/", name)
	}
	if err := x.budget.Add(name, size); err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnsafe, err)
	}
	return clean, nil
}

// parent creates the directories above rel (slash-separated) and refuses
// any that is a symbolic link or a file.
func (x *extractor) parent(rel string) error {
	dir := x.root
	parts := strings.Split(rel, "/")
	for _, p := range parts[:len(parts)-1] {
		dir = filepath.Join(dir, p)
		if err := x.mkdir(dir, rel); err != nil {
			return err
		}
	}
	return nil
}

func (x *extractor) mkdir(dir, member string) error {
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.Mkdir(dir, 0o755)
	case err != nil:
		return err
	case !fi.IsDir():
		return unsafef(member, "lies below %q, which is not a directory", x.rel(dir))
	}
	return nil
}

func (x *extractor) rel(p string) string {
	r, _ := filepath.Rel(x.root, p)
	return filepath.ToSlash(r)
}

func (x *extractor) dir(name string) error {
	rel, err := x.member(name, 0)
	if err != nil {
		return err
	}
	if err := x.parent(rel); err != nil {
		return err
	}
	return x.mkdir(filepath.Join(x.root, filepath.FromSlash(rel)), name)
}

func (x *extractor) file(name string, mode fs.FileMode, size int64, r io.Reader) error {
	rel, err := x.member(name, size)
	if err != nil {
		return err
	}
	if err := x.parent(rel); err != nil {
		return err
	}
	perm := fs.FileMode(0o644)
	if mode&0o111 != 0 {
		perm = 0o755
	}
	// O_EXCL refuses a duplicate member and never follows a link.
	out, err := os.OpenFile(filepath.Join(x.root, filepath.FromSlash(rel)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("member %q: %w", name, err)
	}
	n, err := io.Copy(out, io.LimitReader(r, size+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("member %q: %w", name, err)
	}
	if n != size {
		return unsafef(name, "holds %d bytes or more, but its header says %d", n, size)
	}
	return nil
}

// symlink accepts a relative link whose target stays inside the top
// directory. ".." may only lead the target: after a normal element it
// could step back out through another link.
func (x *extractor) symlink(name, target string) error {
	rel, err := x.member(name, 0)
	if err != nil {
		return err
	}
	if target == "" || strings.HasPrefix(target, "/") || strings.ContainsAny(target, "\\\x00") {
		return unsafef(name, "links to %q; want a relative path inside the sdist", target)
	}
	depth := strings.Count(rel, "/") - 1 // levels below the top directory
	if depth < 0 {
		return unsafef(name, "is a link where the top directory belongs")
	}
	leading := true
	for _, p := range strings.Split(strings.TrimSuffix(target, "/"), "/") {
		switch {
		case p == "..":
			if !leading {
				return unsafef(name, "links to %q; \"..\" may only start a link target", target)
			}
			depth--
			if depth < 0 {
				return unsafef(name, "links to %q, outside the sdist's top directory", target)
			}
		case p == "" || p == ".":
			return unsafef(name, "links to %q, which is not a clean path", target)
		default:
			leading = false
		}
	}
	if err := x.parent(rel); err != nil {
		return err
	}
	if err := os.Symlink(target, filepath.Join(x.root, filepath.FromSlash(rel))); err != nil {
		return fmt.Errorf("member %q: %w", name, err)
	}
	return nil
}

// hardlink copies the link as a new file: the target must be a regular
// file unpacked before it.
func (x *extractor) hardlink(name, target string) error {
	trel := strings.TrimSuffix(strings.TrimPrefix(target, "./"), "/")
	if trel == "" || strings.HasPrefix(trel, "/") || strings.Contains("/"+trel+"/", "/../") {
		return unsafef(name, "is a hard link to %q; want an earlier member of the sdist", target)
	}
	src := filepath.Join(x.root, filepath.FromSlash(trel))
	fi, err := os.Lstat(src)
	if err != nil || !fi.Mode().IsRegular() || !strings.HasPrefix(trel, x.top+"/") {
		return unsafef(name, "is a hard link to %q; want an earlier regular file of the sdist", target)
	}
	// Parents of the target must be real directories too.
	dir := x.root
	parts := strings.Split(trel, "/")
	for _, p := range parts[:len(parts)-1] {
		dir = filepath.Join(dir, p)
		if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
			return unsafef(name, "is a hard link to %q, which lies below a link or a missing directory", target)
		}
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("member %q: %w", name, err)
	}
	defer in.Close()
	return x.file(name, fi.Mode(), fi.Size(), in)
}
