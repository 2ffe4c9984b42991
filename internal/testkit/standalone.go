package testkit

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitpoll-install/bitpoll-install/internal/testenv"
)

// StandaloneBuild is an interpreter archive in python-build-standalone's
// install_only layout, made by StandaloneArchive.
type StandaloneBuild struct {
	Path    string // the .tar.gz
	Size    int64
	SHA256  string
	Version string // "3.11.2", as the interpreter reports it
	Minor   string // "3.11"
	Arch    string // "x86_64"
	// Target is the lock target it serves, "cp311-x86_64".
	Target string
}

// standaloneSkip are the parts of the host's standard library left out
// of the archive: bytecode (the installer compiles its own), the test
// suite, the GUI modules, the build configuration (with the static
// library), and Debian's sitecustomize, a link to /etc.
var standaloneSkip = map[string]bool{
	"__pycache__": true, "test": true, "idlelib": true, "tkinter": true, "turtledemo": true,
	"ensurepip": true, "sitecustomize.py": true, "site-packages": true, "dist-packages": true,
}

// StandaloneArchive makes, in dir, a real relocatable interpreter archive
// in python-build-standalone's layout from the host's own CPython: the
// executable /usr/bin/python3.X copied to python/bin/python3.X, a
// relative link python/bin/python3 to it, and the standard library
// /usr/lib/python3.X (lib-dynload included, the parts in standaloneSkip
// left out) copied to python/lib/python3.X. CPython finds its prefix
// from its executable's location (the landmark lib/python3.X/os.py), so
// the unpacked tree runs wherever it lies, like a real
// python-build-standalone build. It needs a distribution Python whose
// executable links libpython statically (Debian's and Ubuntu's do);
// without one the test skips (fails with CI=true).
func StandaloneArchive(tb testing.TB, dir string) StandaloneBuild {
	tb.Helper()
	var minor, exe, lib string
	for _, v := range []string{"3.11", "3.12", "3.13", "3.14", "3.10"} {
		e, l := "/usr/bin/python"+v, "/usr/lib/python"+v
		if _, err := os.Stat(filepath.Join(l, "os.py")); err != nil {
			continue
		}
		if _, err := os.Stat(e); err != nil {
			continue
		}
		out, err := exec.Command("ldd", e).Output()
		if err != nil || strings.Contains(string(out), "libpython") {
			continue // linked to a shared libpython outside the tree
		}
		minor, exe, lib = v, e, l
		break
	}
	if exe == "" {
		testenv.Skip(tb, "no distribution CPython (/usr/bin/python3.X with /usr/lib/python3.X, libpython linked in) to make a standalone interpreter archive from: install python3 (Debian: apt-get install python3)")
	}
	out, err := exec.Command(exe, "-I", "-c", "import platform; print(platform.python_version(), platform.machine())").Output()
	if err != nil {
		tb.Fatalf("run %s: %v", exe, err)
	}
	version, arch, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	path := filepath.Join(dir, "cpython-"+version+"-"+arch+"-unknown-linux-gnu-install_only_stripped.tar.gz")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	h := sha256.New()
	gz := gzip.NewWriter(io.MultiWriter(f, h))
	tw := tar.NewWriter(gz)
	add := func(name string, info fs.FileInfo, link, src string) {
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			tb.Fatal(err)
		}
		hdr.Name, hdr.Uname, hdr.Gname, hdr.Uid, hdr.Gid = name, "", "", 0, 0
		if info.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			tb.Fatal(err)
		}
		if info.Mode().IsRegular() {
			in, err := os.Open(src)
			if err != nil {
				tb.Fatal(err)
			}
			defer in.Close()
			if _, err := io.Copy(tw, in); err != nil {
				tb.Fatal(err)
			}
		}
	}
	dirInfo, _ := os.Stat(dir)
	for _, d := range []string{"python", "python/bin", "python/lib"} {
		add(d, dirInfo, "", "")
	}
	exeInfo, err := os.Stat(exe)
	if err != nil {
		tb.Fatal(err)
	}
	add("python/bin/python"+minor, exeInfo, "", exe)
	linkInfo, err := os.Lstat("/proc/self/exe") // any symlink's mode
	if err != nil {
		tb.Fatal(err)
	}
	add("python/bin/python3", linkInfo, "python"+minor, "")
	err = filepath.WalkDir(lib, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(lib, p)
		if standaloneSkip[d.Name()] || strings.HasPrefix(d.Name(), "config-") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
			if filepath.IsAbs(link) {
				return nil // points out of the tree
			}
		}
		name := "python/lib/python" + minor
		if rel != "." {
			name += "/" + filepath.ToSlash(rel)
		}
		add(name, info, link, p)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return StandaloneBuild{
		Path: path, Size: info.Size(), SHA256: hex.EncodeToString(h.Sum(nil)),
		Version: version, Minor: minor, Arch: arch,
		Target: "cp" + strings.ReplaceAll(minor, ".", "") + "-" + arch,
	}
}
