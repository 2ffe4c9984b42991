package fetch

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	getter "github.com/hashicorp/go-getter/v2"
)

// dirGetter is go-getter's file getter, except that a directory is copied:
// go-getter would make dst a symlink to it, and a pinned source must not
// change under the installer.
type dirGetter struct {
	getter.FileGetter
}

func (g *dirGetter) Get(ctx context.Context, req *getter.Request) error {
	u := req.URL()
	src := u.Path
	if u.RawPath != "" {
		src = u.RawPath
	}
	return copyTree(ctx, src, req.Dst)
}

// copyTree copies the regular files and directories under src to dst, which
// must not exist, keeping executable bits. A top-level .git is left out:
// the source is the working tree. Symlinks and other file types are refused.
func copyTree(ctx context.Context, src, dst string) error {
	info, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return fmt.Errorf("source %q is not a directory or an archive (.tar.gz, .tgz, .zip)", src)
	}
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if rel == ".git" {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil // a linked work tree's .git file
		}
		target := filepath.Join(dst, rel)
		switch t := d.Type(); {
		case t.IsDir():
			return os.Mkdir(target, 0o755)
		case t.IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			return copyFile(path, target, info.Mode().Perm())
		case t&fs.ModeSymlink != 0:
			return fmt.Errorf("source file %q is a symlink: symlinks are not copied, replace it with the file", path)
		default:
			return fmt.Errorf("source file %q has type %v: only regular files and directories are copied", path, t)
		}
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	// The umask may have cleared bits the source has.
	return os.Chmod(dst, perm)
}
