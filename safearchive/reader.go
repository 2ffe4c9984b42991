package safearchive

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrUnsafe is the default Label of a refused member.
var ErrUnsafe = errors.New("unsafe archive")

// maxLinkTarget bounds a zip symlink's target, which is read into memory.
const maxLinkTarget = 4096

// Type is a member's kind.
type Type uint8

// The kinds of member a Policy may accept. Devices, fifos and anything
// else are always refused.
const (
	File Type = iota
	Dir
	Symlink
	Hardlink
)

func (t Type) String() string {
	switch t {
	case File:
		return "file"
	case Dir:
		return "directory"
	case Symlink:
		return "symbolic link"
	}
	return "hard link"
}

// Member is one checked member of an archive.
type Member struct {
	Name string // as the archive stores it
	// Path is the name made clean: slash-separated, without a leading
	// "./" or a trailing slash.
	Path string
	Type Type
	Mode fs.FileMode // the permission bits the archive gives
	Size int64       // a File's declared size; 0 for the others
	// Link is a Symlink's target as stored, or a Hardlink's target as the
	// clean Path of the earlier file it repeats.
	Link string
	Zip  *zip.File // the member, in a zip archive
}

// Policy is what one use of the reader accepts.
type Policy struct {
	Limits Limits
	// Label is wrapped by every refusal of a name, a type or a link, for
	// errors.Is; nil means ErrUnsafe.
	Label error
	// Symlinks accepts relative symbolic links whose target stays inside
	// the archive (inside the top directory, with OneTop). A ".." may
	// only lead the target: after a normal element it could step back
	// out through another link.
	Symlinks bool
	// Hardlinks accepts tar hard links to an earlier regular file.
	Hardlinks bool
	// DotSlash drops a leading "./" from names, as archives made with
	// "tar -C dir ." have, and skips that "./" entry itself.
	DotSlash bool
	// OneTop requires every member to lie in one top directory, as in an
	// sdist.
	OneTop bool
}

// MemberError is a refused member.
type MemberError struct {
	Member string // the name as the archive stores it
	Err    error
}

func (e *MemberError) Error() string { return fmt.Sprintf("member %q: %v", e.Member, e.Err) }
func (e *MemberError) Unwrap() error { return e.Err }

// seen is what the members so far tell about one path.
type seen struct {
	typ      Type
	explicit bool  // a member of its own, not only implied by a member below it
	size     int64 // a File's size, for a hard link that repeats it
}

// checker checks the members of one archive in order.
type checker struct {
	p      Policy
	budget *Budget
	paths  map[string]seen
	top    string
}

func (p Policy) checker(archiveSize int64) *checker {
	return &checker{p: p, budget: p.limits().Budget(archiveSize), paths: map[string]seen{}}
}

// limits are the Policy's, or the default ones when it sets none.
func (p Policy) limits() Limits {
	if p.Limits == (Limits{}) {
		return Default()
	}
	return p.Limits
}

func (c *checker) refuse(name, format string, args ...any) error {
	label := c.p.Label
	if label == nil {
		label = ErrUnsafe
	}
	return &MemberError{Member: name, Err: fmt.Errorf("%w: %s", label, fmt.Sprintf(format, args...))}
}

// allowed says which kinds of member the policy accepts.
func (c *checker) allowed() string {
	if c.p.Symlinks || c.p.Hardlinks {
		return "only regular files, directories and links are allowed here"
	}
	return "only regular files and directories are allowed here"
}

// check checks m, whose Name, Type, Size and Link are set, against what
// came before, sets its Path and counts it. skip reports the "./" entry
// that DotSlash passes over.
func (c *checker) check(m *Member) (skip bool, err error) {
	name := m.Name
	if c.p.DotSlash {
		name = strings.TrimPrefix(name, "./")
		if name == "" && m.Type == Dir {
			return true, nil
		}
	}
	if err := CheckName(name); err != nil {
		return false, c.refuse(m.Name, "%v", err)
	}
	if m.Type != Dir && strings.HasSuffix(name, "/") {
		return false, c.refuse(m.Name, "is a %v whose name ends in a slash", m.Type)
	}
	switch {
	case m.Type == Symlink && !c.p.Symlinks:
		return false, c.refuse(m.Name, "is a symbolic link to %q; %s", m.Link, c.allowed())
	case m.Type == Hardlink && !c.p.Hardlinks:
		return false, c.refuse(m.Name, "is a hard link to %q; %s", m.Link, c.allowed())
	}
	m.Path = strings.TrimSuffix(name, "/")
	parts := strings.Split(m.Path, "/")
	if c.p.OneTop {
		switch {
		case c.top == "":
			c.top = parts[0]
		case parts[0] != c.top:
			return false, c.refuse(m.Name, "and %q lie in different top directories; the archive must have exactly one", c.top+"/")
		}
	}
	for i := 1; i < len(parts); i++ {
		dir := strings.Join(parts[:i], "/")
		s, ok := c.paths[dir]
		if ok && s.typ != Dir {
			return false, c.refuse(m.Name, "lies below %q, which is a %v, not a directory", dir, s.typ)
		}
		if !ok {
			c.paths[dir] = seen{typ: Dir}
		}
	}
	if s, ok := c.paths[m.Path]; ok {
		switch {
		case s.explicit:
			return false, c.refuse(m.Name, "appears twice in the archive")
		case m.Type != Dir:
			return false, c.refuse(m.Name, "is a %v, but earlier members lie below it", m.Type)
		}
	}
	size := m.Size
	switch m.Type {
	case Symlink:
		if err := c.checkSymlink(m, len(parts)); err != nil {
			return false, err
		}
	case Hardlink:
		target := m.Link
		if c.p.DotSlash {
			target = strings.TrimPrefix(target, "./")
		}
		s, ok := c.paths[target]
		if CheckName(target) != nil || !ok || !s.explicit || s.typ != File {
			return false, c.refuse(m.Name, "is a hard link to %q; want an earlier regular file of the archive", m.Link)
		}
		m.Link, size = target, s.size
	}
	if err := c.budget.Add(m.Name, size); err != nil {
		return false, err
	}
	c.paths[m.Path] = seen{typ: m.Type, explicit: true, size: size}
	return false, nil
}

// checkSymlink refuses a link whose target could leave the archive (or
// its top directory): absolute, with a ".." after a normal element, or
// with more leading ".." than the link has directories above it.
func (c *checker) checkSymlink(m *Member, elements int) error {
	t := m.Link
	if t == "" || strings.HasPrefix(t, "/") || strings.ContainsAny(t, "\\\x00") {
		return c.refuse(m.Name, "links to %q; want a relative path inside the archive", t)
	}
	depth, where := elements-1, "the archive"
	if c.p.OneTop {
		depth, where = depth-1, "its top directory"
		if depth < 0 {
			return c.refuse(m.Name, "is a link where the top directory belongs")
		}
	}
	leading := true
	for _, el := range strings.Split(strings.TrimSuffix(t, "/"), "/") {
		switch {
		case el == "..":
			if !leading {
				return c.refuse(m.Name, "links to %q; \"..\" may only start a link target", t)
			}
			if depth--; depth < 0 {
				return c.refuse(m.Name, "links to %q, outside %s", t, where)
			}
		case el == "" || el == ".":
			return c.refuse(m.Name, "links to %q, which is not a clean path", t)
		default:
			leading = false
		}
	}
	return nil
}

// Zip checks every member of zr, an archive of archiveSize bytes, before
// any is handed out, and returns them in the archive's order. A member
// cannot unpack to more than the size it declares: archive/zip fails a
// read past it.
func Zip(zr *zip.Reader, archiveSize int64, p Policy) ([]Member, error) {
	c := p.checker(archiveSize)
	if n := p.limits().Files; len(zr.File) > n {
		return nil, &LimitError{Files: n}
	}
	out := make([]Member, 0, len(zr.File))
	for _, f := range zr.File {
		m := Member{Name: f.Name, Mode: f.Mode().Perm(), Zip: f}
		switch mode := f.Mode(); {
		case mode.IsDir() || strings.HasSuffix(f.Name, "/"):
			m.Type = Dir
		case mode&fs.ModeSymlink != 0:
			m.Type = Symlink
			target, err := readLink(f)
			if err != nil {
				return nil, c.refuse(f.Name, "is a symbolic link whose target cannot be read: %v", err)
			}
			m.Link = target
		case mode.IsRegular():
			m.Size = int64(f.UncompressedSize64)
			if f.UncompressedSize64 > 1<<62 {
				m.Size = -1 // passes any limit
			}
		default:
			return nil, c.refuse(f.Name, "is a special file (mode %v); %s", mode, c.allowed())
		}
		skip, err := c.check(&m)
		if err != nil {
			return nil, err
		}
		if !skip {
			out = append(out, m)
		}
	}
	return out, nil
}

func readLink(f *zip.File) (string, error) {
	rc, err := f.Open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxLinkTarget+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxLinkTarget {
		return "", fmt.Errorf("longer than %d bytes", maxLinkTarget)
	}
	return string(b), nil
}

// Walk reads the archive at path, zip or tar (plain, gzip or bzip2, told
// apart by content), and calls fn with each member once it has passed
// every check, and with its content for a File (nil for the others). A
// zip archive is checked whole before fn first runs; a tar stream, each
// member before its content is read. fn may be nil: Walk then only
// checks.
func Walk(path string, p Policy, fn func(m *Member, body io.Reader) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	br := bufio.NewReader(f)
	magic, _ := br.Peek(262)
	var r io.Reader
	switch {
	case bytes.HasPrefix(magic, []byte("PK\x03\x04")) || bytes.HasPrefix(magic, []byte("PK\x05\x06")):
		return walkZip(f, info.Size(), p, fn)
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("read gzip: %w", err)
		}
		defer zr.Close()
		r = zr
	case bytes.HasPrefix(magic, []byte("BZh")):
		r = bzip2.NewReader(br)
	case len(magic) >= 262 && string(magic[257:262]) == "ustar":
		r = br
	default:
		return fmt.Errorf("%q is neither a .zip nor a .tar, .tar.gz or .tar.bz2 archive", filepath.Base(path))
	}
	return walkTar(r, info.Size(), p, fn)
}

func walkZip(f *os.File, size int64, p Policy, fn func(*Member, io.Reader) error) error {
	zr, err := zip.NewReader(f, size)
	if err != nil {
		return fmt.Errorf("read zip: %w", err)
	}
	ms, err := Zip(zr, size, p)
	if err != nil || fn == nil {
		return err
	}
	for i := range ms {
		m := &ms[i]
		if m.Type != File {
			if err := fn(m, nil); err != nil {
				return err
			}
			continue
		}
		rc, err := m.Zip.Open()
		if err != nil {
			return fmt.Errorf("member %q: %w", m.Name, err)
		}
		err = fn(m, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func walkTar(r io.Reader, size int64, p Policy, fn func(*Member, io.Reader) error) error {
	c := p.checker(size)
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		m := Member{Name: h.Name, Mode: fs.FileMode(h.Mode).Perm(), Link: h.Linkname}
		switch h.Typeflag {
		case tar.TypeXGlobalHeader:
			continue // GitHub puts the commit id here; it is not a file
		case tar.TypeReg: // the reader reports old-style regular files as TypeReg
			m.Type, m.Size = File, h.Size
		case tar.TypeDir:
			m.Type = Dir
		case tar.TypeSymlink:
			m.Type = Symlink
		case tar.TypeLink:
			m.Type = Hardlink
		default:
			return c.refuse(h.Name, "is a special file (tar type %q); %s", h.Typeflag, c.allowed())
		}
		// Sizes are counted before the content is read, so at most the
		// limit is ever decompressed.
		skip, err := c.check(&m)
		if err != nil {
			return err
		}
		if skip || fn == nil {
			continue
		}
		var body io.Reader
		if m.Type == File {
			body = tr
		}
		if err := fn(&m, body); err != nil {
			return err
		}
	}
}

// Extract checks the whole archive at path, then unpacks it into dst, an
// empty directory or one it creates. Files are made 0644, or 0755 when the archive gives
// any execute bit; a hard link becomes a copy of its file. Nothing is
// ever written through a link: every parent of a member must be a real
// directory. On error, dst may hold part of the archive; the caller
// unpacks into a new directory and removes it.
func Extract(path, dst string, p Policy) error {
	if err := Walk(path, p, nil); err != nil {
		return err
	}
	if err := os.Mkdir(dst, 0o755); errors.Is(err, fs.ErrExist) {
		if des, err := os.ReadDir(dst); err != nil || len(des) > 0 {
			return fmt.Errorf("unpack into %q: want an empty directory", dst)
		}
	} else if err != nil {
		return err
	}
	label := p.Label
	if label == nil {
		label = ErrUnsafe
	}
	return Walk(path, p, func(m *Member, body io.Reader) error {
		return write(dst, m, body, label)
	})
}

func write(root string, m *Member, body io.Reader, label error) error {
	dir := root
	parts := strings.Split(m.Path, "/")
	for _, el := range parts[:len(parts)-1] {
		dir = filepath.Join(dir, el)
		if err := mkdir(dir); err != nil {
			return fmt.Errorf("member %q: %w", m.Name, err)
		}
	}
	p := filepath.Join(root, filepath.FromSlash(m.Path))
	var err error
	switch m.Type {
	case Dir:
		err = mkdir(p)
	case Symlink:
		err = os.Symlink(m.Link, p)
	case File:
		err = writeFile(p, m.Mode, m.Size, body)
	case Hardlink:
		err = copyFile(filepath.Join(root, filepath.FromSlash(m.Link)), p)
	}
	var short *shortError
	if errors.As(err, &short) {
		return &MemberError{Member: m.Name, Err: fmt.Errorf("%w: %v", label, err)}
	}
	if err != nil {
		return fmt.Errorf("member %q: %w", m.Name, err)
	}
	return nil
}

// mkdir makes dir, or accepts it when it is a real directory already.
func mkdir(dir string) error {
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.Mkdir(dir, 0o755)
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%q is not a directory", dir)
	}
	return nil
}

// shortError is content of another size than its header declared.
type shortError struct{ n, size int64 }

func (e *shortError) Error() string {
	return fmt.Sprintf("holds %d bytes or more, but its header says %d", e.n, e.size)
}

func writeFile(p string, mode fs.FileMode, size int64, r io.Reader) error {
	perm := fs.FileMode(0o644)
	if mode&0o111 != 0 {
		perm = 0o755
	}
	// O_EXCL never follows a link and never replaces a file.
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	n, err := io.Copy(out, io.LimitReader(r, size+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = &shortError{n: n, size: size}
	}
	return err
}

func copyFile(src, dst string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%q is not a regular file", src)
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeFile(dst, fi.Mode(), fi.Size(), in)
}
