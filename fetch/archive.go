package fetch

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/bitpoll-install/bitpoll-install/archivecheck"
	getter "github.com/hashicorp/go-getter/v2"
)

// decompressors returns the archive formats Get unpacks. Each is checked by
// a scan first, because go-getter's own extractors do not refuse absolute
// names or links (a symlink member becomes a regular file).
func decompressors(lim limits) map[string]getter.Decompressor {
	// go-getter gets the limits too, as a second line of defence; it counts
	// one entry more than there is, hence the slack.
	inner := getter.LimitedDecompressors(lim.unpack.Files+1, lim.unpack.Ceiling)
	tgz := &checkedDecompressor{inner: inner["tar.gz"], scan: scanTarGz, lim: lim}
	return map[string]getter.Decompressor{
		"tar.gz": tgz,
		"tgz":    tgz,
		"zip":    &checkedDecompressor{inner: inner["zip"], scan: scanZip, lim: lim},
	}
}

// checkedDecompressor scans an archive, unpacks it next to dst and moves the
// result to dst, dropping a single top-level directory.
type checkedDecompressor struct {
	inner getter.Decompressor
	scan  func(archive string, budget *archivecheck.Budget) error
	lim   limits
}

func (d *checkedDecompressor) Decompress(dst, src string, dir bool, umask os.FileMode) error {
	if !dir {
		return fmt.Errorf("archive %q: only whole directories are unpacked", src)
	}
	info, err := os.Stat(src)
	if err != nil {
		return err
	}
	if err := d.scan(src, d.lim.unpack.Budget(info.Size())); err != nil {
		return err
	}
	unpack, err := os.MkdirTemp(filepath.Dir(dst), ".unpack-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(unpack)
	root := filepath.Join(unpack, "root")
	if err := d.inner.Decompress(root, src, true, umask); err != nil {
		return err
	}
	des, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	if len(des) == 1 && des[0].IsDir() {
		root = filepath.Join(root, des[0].Name())
	}
	return os.Rename(root, dst)
}

// checkMember refuses archive members that would land outside the
// destination or that are not plain files or directories.
func checkMember(name string, mode fs.FileMode) error {
	if err := checkName(name); err != nil {
		return err
	}
	if !mode.IsRegular() && !mode.IsDir() {
		return fmt.Errorf("archive member %q has type %v: only regular files and directories are unpacked", name, mode.Type())
	}
	return nil
}

// checkName applies archivecheck's name policy. A leading "./", as in
// archives made with "tar -C dir .", is allowed, and so is that root
// entry itself.
func checkName(name string) error {
	rel := strings.TrimPrefix(name, "./")
	if rel == "" && name != "" {
		return nil
	}
	if err := archivecheck.CheckName(rel); err != nil {
		return fmt.Errorf("archive member %q %v", name, err)
	}
	return nil
}

func scanTarGz(archive string, budget *archivecheck.Budget) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("read gzip archive: %w", err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tar archive: %w", err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue // GitHub puts the commit id here; it is not a file.
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeDir:
		case tar.TypeLink:
			return fmt.Errorf("archive member %q is a hard link to %q: only regular files and directories are unpacked", hdr.Name, hdr.Linkname)
		default:
			// FileInfo knows symlinks, devices and fifos; unknown types
			// are refused too.
			if mode := hdr.FileInfo().Mode(); mode.Type() != 0 {
				return checkMember(hdr.Name, mode)
			}
			return fmt.Errorf("archive member %q has tar type %q: only regular files and directories are unpacked", hdr.Name, hdr.Typeflag)
		}
		if err := checkName(hdr.Name); err != nil {
			return err
		}
		// Sizes are checked before tr.Next reads past the member, so at most
		// the limit is ever decompressed.
		if err := budget.Add(hdr.Name, hdr.Size); err != nil {
			return err
		}
	}
}

func scanZip(archive string, budget *archivecheck.Budget) error {
	zr, err := zip.OpenReader(archive)
	if err != nil {
		return fmt.Errorf("read zip archive: %w", err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if err := checkMember(f.Name, f.Mode()); err != nil {
			return err
		}
		// archive/zip fails a read that goes past the declared size, so a
		// member cannot unpack to more than this.
		size := int64(f.UncompressedSize64)
		if f.UncompressedSize64 > 1<<62 {
			size = -1
		}
		if err := budget.Add(f.Name, size); err != nil {
			return err
		}
	}
	return nil
}
