// Package bundle writes and opens offline bundles: one tar file with a
// lock, its app source and every file the lock pins for the chosen
// targets, so that a machine without network can install from it.
//
// Both ends check against the lock: Write takes the files from the
// verified download cache and the app tree from a source that must hash
// to the lock's tree; Open admits only files the lock pins, by size and
// sha256, into the cache, and the build checks the app tree again.
//
// The layout of the tar, in this order:
//
//	bitpoll.lock        the lock, as lockfile.Format writes it
//	app/...             the app tree, its modes and symbolic links
//	files/<sha256>      each pinned file (wheel, sdist or interpreter
//	                    archive), named by its hash
//	bundle.json         the Manifest, last
package bundle

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bitpoll-install/bitpoll-install/atomicfile"
	"github.com/bitpoll-install/bitpoll-install/fetch"
	"github.com/bitpoll-install/bitpoll-install/install"
	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/progress"
	"github.com/bitpoll-install/bitpoll-install/pyspec/wheeltag"
	"github.com/bitpoll-install/bitpoll-install/safearchive"
	"github.com/bitpoll-install/bitpoll-install/treehash"
)

// Format is the manifest's format version.
const Format = 1

// Member names.
const (
	LockMember     = "bitpoll.lock"
	ManifestMember = "bundle.json"
	appPrefix      = "app/"
	filesPrefix    = "files/"
)

// ErrBundle labels a refused bundle member, for errors.Is.
var ErrBundle = errors.New("bad bundle")

// Manifest describes a bundle.
type Manifest struct {
	Format     int      `json:"format"`
	App        string   `json:"app"`
	Version    string   `json:"version"`
	Tree       string   `json:"tree"`
	Targets    []string `json:"targets"`
	LockSHA256 string   `json:"lock_sha256"`
	Files      []File   `json:"files"`
	CreatedBy  string   `json:"created_by"`
}

// File is one pinned file in a bundle.
type File struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Options say what a bundle holds.
type Options struct {
	Lock *lockfile.Lock
	// Targets are the targets whose files go in; none means all the lock's.
	Targets []string
	// App brings the app tree; its Lock is set from Lock.
	App      install.App
	CacheDir string // the download cache the files come through
	// HTTPClient fetches the pinned interpreters, as install's does; nil
	// means the default client.
	HTTPClient *http.Client
	Progress   progress.Reporter
	CreatedBy  string
}

// Write makes the bundle out: it writes aside, then renames, so out is
// whole or absent.
func Write(ctx context.Context, out string, o Options) (*Manifest, error) {
	if o.Progress == nil {
		o.Progress = progress.Nop{}
	}
	l := o.Lock
	lockData, err := lockfile.Format(l)
	if err != nil {
		return nil, err
	}
	targets, err := pickTargets(l, o.Targets)
	if err != nil {
		return nil, err
	}
	var arts, interps []fetch.Artifact
	seen := map[string]bool{}
	for _, t := range targets {
		files, err := l.Files(t)
		if err != nil {
			return nil, err
		}
		for _, s := range files {
			if !seen[s.File.SHA256] {
				seen[s.File.SHA256] = true
				arts = append(arts, fetch.Artifact{Name: s.File.Name, URL: s.File.URL, Size: s.File.Size, SHA256: s.File.SHA256})
			}
		}
		// The pinned interpreter too: a host without a fitting Python
		// installs on it.
		if it, ok := l.InterpreterFor(t.String()); ok && !seen[it.SHA256] {
			seen[it.SHA256] = true
			f := interpreterFile(it)
			if f.Size == 0 {
				f.Size = -1 // unknown to the lock: the hash alone decides
			}
			interps = append(interps, fetch.Artifact{Name: f.Name, URL: f.URL, Size: f.Size, SHA256: f.SHA256})
		}
	}

	scratch, err := os.MkdirTemp(filepath.Dir(out), ".bundle-app-")
	if err != nil {
		return nil, fmt.Errorf("make the bundle %s: %w", out, err)
	}
	defer os.RemoveAll(scratch)
	app := o.App
	app.Lock, app.Progress = l, o.Progress
	appDir := filepath.Join(scratch, "app")
	if err := app.Fetch(ctx, appDir); err != nil {
		return nil, err
	}
	d := &fetch.Downloader{CacheDir: o.CacheDir, Progress: o.Progress, Verify: true}
	paths, err := d.Fetch(ctx, arts)
	if err != nil {
		return nil, err
	}
	d.HTTPClient = o.HTTPClient
	ipaths, err := d.Fetch(ctx, interps)
	if err != nil {
		return nil, err
	}
	maps.Copy(paths, ipaths)
	arts = append(arts, interps...)
	slices.SortFunc(arts, func(a, b fetch.Artifact) int { return strings.Compare(a.SHA256, b.SHA256) })

	m := &Manifest{Format: Format, App: l.App.Name, Version: l.App.Version, Tree: l.App.Tree, LockSHA256: sum(lockData), CreatedBy: o.CreatedBy}
	for _, t := range targets {
		m.Targets = append(m.Targets, t.String())
	}
	for _, a := range arts {
		fi, err := os.Stat(paths[a.SHA256])
		if err != nil {
			return nil, err
		}
		m.Files = append(m.Files, File{Name: a.Name, SHA256: a.SHA256, Size: fi.Size()})
	}
	err = atomicfile.WriteWith(out, 0o644, func(w io.Writer) error {
		tw := tar.NewWriter(w)
		if err := addBytes(tw, LockMember, lockData); err != nil {
			return err
		}
		if err := addTree(tw, appDir, appPrefix); err != nil {
			return err
		}
		for _, a := range arts {
			if err := addFile(tw, filesPrefix+a.SHA256, paths[a.SHA256], 0o444); err != nil {
				return err
			}
		}
		man, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return err
		}
		if err := addBytes(tw, ManifestMember, append(man, '\n')); err != nil {
			return err
		}
		return tw.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("write the bundle %s: %w", out, err)
	}
	return m, nil
}

// pickTargets returns the lock's targets named by names, or all of them.
func pickTargets(l *lockfile.Lock, names []string) ([]wheeltag.Target, error) {
	all, err := l.ParsedTargets()
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return all, nil
	}
	var out []wheeltag.Target
	for _, n := range names {
		i := slices.IndexFunc(all, func(t wheeltag.Target) bool { return t.String() == n })
		if i < 0 {
			return nil, fmt.Errorf("--target %s: the lock has no such target; it has %s", n, strings.Join(l.Targets, ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}

func sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// The members carry no owner and one fixed time, so that a bundle of the
// same inputs is the same bytes.
var epoch = time.Unix(0, 0).UTC()

func header(name string, typ byte, mode int64, size int64) *tar.Header {
	return &tar.Header{Name: name, Typeflag: typ, Mode: mode, Size: size, ModTime: epoch, Format: tar.FormatPAX}
}

func addBytes(tw *tar.Writer, name string, data []byte) error {
	if err := tw.WriteHeader(header(name, tar.TypeReg, 0o644, int64(len(data)))); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

func addFile(tw *tar.Writer, name, src string, mode int64) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(header(name, tar.TypeReg, mode, fi.Size())); err != nil {
		return err
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("add %s: %w", src, err)
	}
	return nil
}

// addTree adds the tree at dir under prefix: directories, files (0755
// when executable, else 0644, as git keeps them) and symbolic links.
func addTree(tw *tar.Writer, dir, prefix string) error {
	return filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		name := prefix + filepath.ToSlash(rel)
		fi, err := de.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			return tw.WriteHeader(header(name+"/", tar.TypeDir, 0o755, 0))
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			h := header(name, tar.TypeSymlink, 0o777, 0)
			h.Linkname = target
			return tw.WriteHeader(h)
		case fi.Mode().IsRegular():
			mode := int64(0o644)
			if fi.Mode()&0o111 != 0 {
				mode = 0o755
			}
			return addFile(tw, name, p, mode)
		default:
			return fmt.Errorf("add %s: not a file, directory or link", p)
		}
	})
}

// Opened is a bundle unpacked for a build: its files are in the cache,
// its lock and app tree in a scratch directory until Close.
type Opened struct {
	Manifest Manifest
	Lock     *lockfile.Lock
	AppDir   string
	dir      string
}

// Close removes the scratch directory.
func (u *Opened) Close() error { return os.RemoveAll(u.dir) }

// Open checks the bundle at path whole, unpacks it into a scratch
// directory under tmp (the system's when empty) and adds its files to the
// download cache at cacheDir, each checked against the bundle's lock. A
// member that is not the lock, the manifest, the app tree or a file the
// lock pins is refused.
func Open(path, tmp, cacheDir string, limits safearchive.Limits) (_ *Opened, err error) {
	dir, err := os.MkdirTemp(tmp, "bitpoll-bundle-")
	if err != nil {
		return nil, fmt.Errorf("open the bundle %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	fail := func(format string, args ...any) error {
		return fmt.Errorf("open the bundle %s: %w: %s", path, ErrBundle, fmt.Sprintf(format, args...))
	}
	pol := safearchive.Policy{Limits: limits, Label: ErrBundle, Symlinks: true}
	var last string
	err = safearchive.Walk(path, pol, func(m *safearchive.Member, _ io.Reader) error {
		last = m.Path
		switch {
		case m.Path == LockMember || m.Path == ManifestMember:
		case m.Path+"/" == appPrefix || strings.HasPrefix(m.Path, appPrefix):
		case m.Path+"/" == filesPrefix:
		case strings.HasPrefix(m.Path, filesPrefix) && m.Type == safearchive.File && !strings.Contains(m.Path[len(filesPrefix):], "/"):
		default:
			return fail("member %q has no place in a bundle (%s, %s, %s... and %s... only)", m.Name, LockMember, ManifestMember, appPrefix, filesPrefix)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open the bundle %s: %w", path, err)
	}
	if last != ManifestMember {
		return nil, fail("its last member is %q, not %s: the bundle is cut short or was not made by bitpoll-install bundle", last, ManifestMember)
	}
	unpacked := filepath.Join(dir, "bundle")
	if err := safearchive.Extract(path, unpacked, pol); err != nil {
		return nil, fmt.Errorf("open the bundle %s: %w", path, err)
	}

	var man Manifest
	data, err := os.ReadFile(filepath.Join(unpacked, ManifestMember))
	if err != nil {
		return nil, fail("%v", err)
	}
	if err := json.Unmarshal(data, &man); err != nil {
		return nil, fail("%s: %v", ManifestMember, err)
	}
	if man.Format != Format {
		return nil, fail("%s has format %d; this bitpoll-install reads format %d: use the bitpoll-install that made it", ManifestMember, man.Format, Format)
	}
	lockData, err := os.ReadFile(filepath.Join(unpacked, LockMember))
	if err != nil {
		return nil, fail("%v", err)
	}
	if got := sum(lockData); got != man.LockSHA256 {
		return nil, fail("%s hashes to %s, but %s says %s: the bundle was changed", LockMember, got, ManifestMember, man.LockSHA256)
	}
	l, err := lockfile.Parse(lockData, path+":"+LockMember)
	if err != nil {
		return nil, err
	}
	pinned := map[string]lockfile.File{}
	for _, p := range l.Packages {
		for _, f := range p.Wheels {
			pinned[f.SHA256] = f
		}
		if p.Sdist != nil {
			pinned[p.Sdist.SHA256] = *p.Sdist
		}
	}
	for _, it := range l.Interpreters {
		pinned[it.SHA256] = interpreterFile(it)
	}
	files, err := os.ReadDir(filepath.Join(unpacked, filepath.FromSlash(filesPrefix)))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fail("%v", err)
	}
	listed := map[string]bool{}
	for _, f := range man.Files {
		listed[f.SHA256] = true
	}
	filesDir := filepath.Join(unpacked, filepath.FromSlash(filesPrefix))
	var add []lockfile.File
	for _, de := range files {
		f, ok := pinned[de.Name()]
		if !ok || !listed[de.Name()] {
			return nil, fail("%s%s is not a file its lock pins", filesPrefix, de.Name())
		}
		got, size, err := treehash.FileSHA256(filepath.Join(filesDir, de.Name()))
		if err != nil {
			return nil, fail("%s%s: %v", filesPrefix, de.Name(), err)
		}
		if got != f.SHA256 || f.Size != 0 && size != f.Size {
			return nil, fail("%s%s (%s) has sha256 %s and %d bytes, but the lock pins %s and %d bytes: the bundle was changed or damaged",
				filesPrefix, de.Name(), f.Name, got, size, f.SHA256, f.Size)
		}
		if f.Size == 0 {
			f.Size = size // an interpreter the lock pins by hash alone
		}
		add = append(add, f)
	}
	for sha := range listed {
		if _, ok := pinned[sha]; !ok {
			return nil, fail("%s lists %s%s, which its lock does not pin", ManifestMember, filesPrefix, sha)
		}
		if _, err := os.Stat(filepath.Join(filesDir, sha)); err != nil {
			return nil, fail("%s lists %s%s, which the bundle lacks", ManifestMember, filesPrefix, sha)
		}
	}
	// Only now, with the whole bundle checked, does the cache change.
	d := &fetch.Downloader{CacheDir: cacheDir}
	for _, f := range add {
		if err := addToCache(d, f, filepath.Join(filesDir, f.SHA256)); err != nil {
			return nil, fmt.Errorf("open the bundle %s: %s%s (%s): %w", path, filesPrefix, f.SHA256, f.Name, err)
		}
	}
	return &Opened{Manifest: man, Lock: l, AppDir: filepath.Join(unpacked, "app"), dir: dir}, nil
}

func addToCache(d *fetch.Downloader, f lockfile.File, src string) error {
	r, err := os.Open(src)
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = d.Add(fetch.Artifact{Name: f.Name, URL: f.URL, Size: f.Size, SHA256: f.SHA256}, r)
	if err == nil {
		err = os.Remove(src) // the cache has its own copy now
	}
	return err
}

// interpreterFile is a pinned interpreter archive as a file of the lock;
// Size 0 means the lock does not know it.
func interpreterFile(it lockfile.Interpreter) lockfile.File {
	name := it.URL
	if u, err := url.Parse(it.URL); err == nil {
		name = path.Base(u.Path)
	}
	return lockfile.File{Name: name, URL: it.URL, Size: it.Size, SHA256: it.SHA256}
}
