package index

import (
	"github.com/bitpoll-install/bitpoll-install/httpretry"
	"github.com/bitpoll-install/bitpoll-install/safearchive"

	"archive/zip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Cache layout; the version in the folder names changes with the format.
const (
	cacheMetadataDir      = "metadata-v1"       // <sha256 of the file>: PEP 658 files
	cacheWheelMetadataDir = "wheel-metadata-v1" // <sha256 of the wheel>: METADATA read from a verified wheel
)

// Metadata returns the core metadata of f: the PEP 658 file when the index
// has one with a hash, verified against it; otherwise the wheel is
// downloaded, verified, and its .dist-info/METADATA is read.
func (c *Client) Metadata(ctx context.Context, f File) (*Metadata, error) {
	data, err := c.metadataBytes(ctx, f)
	if err != nil {
		return nil, err
	}
	m, err := ParseMetadata(data)
	if err != nil {
		return nil, fmt.Errorf("read metadata of %s: %w", f.Filename, err)
	}
	if name, ok := wheelName(f.Filename); ok && Normalize(name) != Normalize(m.Name) {
		return nil, fmt.Errorf("read metadata of %s: it names project %q, want %q: the index serves mismatched metadata", f.Filename, m.Name, name)
	}
	return m, nil
}

func (c *Client) metadataBytes(ctx context.Context, f File) ([]byte, error) {
	if f.HasMetadata && f.MetadataSHA256 != "" {
		path := c.cachePath(cacheMetadataDir, f.MetadataSHA256)
		if data, ok := c.cacheRead(path); ok && sha256Hex(data) == f.MetadataSHA256 {
			return data, nil
		}
		data, err := c.fetchVerified(ctx, f.URL+".metadata", f.MetadataSHA256, MaxMetadataSize)
		if errors.Is(err, errStatusNotFound) {
			return nil, fmt.Errorf("fetch metadata of %s: the index lists it but answers 404 for %s.metadata; retry later or use --index-url: %w", f.Filename, f.URL, ErrNotFound)
		}
		if err != nil {
			return nil, err
		}
		c.cacheWrite(path, data)
		return data, nil
	}

	// Without a verifiable metadata file, the wheel itself is the source.
	if _, ok := wheelName(f.Filename); !ok {
		return nil, fmt.Errorf("read metadata of %s: the index has no metadata file for it and it is not a wheel: build it or pick a wheel", f.Filename)
	}
	path := c.cachePath(cacheWheelMetadataDir, f.SHA256)
	if data, ok := c.cacheRead(path); ok {
		return data, nil
	}
	// Some indexes (and proxies in front of PyPI) drop the PEP 658 keys
	// from their pages while still serving the files. With no hash to
	// check, such a file is accepted only when it describes this very
	// wheel; it feeds resolution alone and is never installed.
	if data, ok := c.unadvertisedMetadata(ctx, f); ok {
		c.cacheWrite(path, data)
		return data, nil
	}
	tmp, err := c.download(ctx, f, MaxWheelSize)
	if errors.Is(err, errStatusNotFound) {
		return nil, fmt.Errorf("download %s: the index lists it but answers 404: %w", f.URL, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	defer closeRemove(tmp)
	data, err := c.wheelMetadata(tmp, f.Filename)
	if err != nil {
		return nil, err
	}
	c.cacheWrite(path, data)
	return data, nil
}

// wheelName returns the distribution name part of a wheel file name
// (name-version[-build]-python-abi-platform.whl).
func wheelName(filename string) (string, bool) {
	stem, ok := strings.CutSuffix(filename, ".whl")
	if !ok {
		return "", false
	}
	parts := strings.Split(stem, "-")
	if len(parts) != 5 && len(parts) != 6 {
		return "", false
	}
	return parts[0], true
}

// wheelMetadata reads <name>-<version>.dist-info/METADATA from a wheel,
// through safearchive: a wheel the installer would refuse is refused here
// too.
func (c *Client) wheelMetadata(f *os.File, filename string) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("open wheel %s: %w", filename, err)
	}
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("open wheel %s: %w", filename, err)
	}
	members, err := safearchive.Zip(zr, st.Size(), safearchive.Policy{Limits: c.unpack})
	if err != nil {
		return nil, fmt.Errorf("read wheel %s: %w", filename, err)
	}
	// The dist-info folder should be named after the file's name-version;
	// any single top-level one is accepted when the spelling differs.
	stem := strings.TrimSuffix(filename, ".whl")
	parts := strings.SplitN(stem, "-", 3)
	want := ""
	if len(parts) >= 2 {
		want = strings.ToLower(parts[0] + "-" + parts[1] + ".dist-info/METADATA")
	}
	var found []*zip.File
	for _, m := range members {
		zf := m.Zip
		dir, base, ok := strings.Cut(zf.Name, "/")
		if !ok || base != "METADATA" || !strings.HasSuffix(dir, ".dist-info") {
			continue
		}
		if strings.ToLower(zf.Name) == want {
			found = []*zip.File{zf}
			break
		}
		found = append(found, zf)
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("read wheel %s: found %d *.dist-info/METADATA files, want exactly one", filename, len(found))
	}
	zf := found[0]
	if zf.UncompressedSize64 > MaxMetadataSize {
		return nil, fmt.Errorf("read wheel %s: %s is %d bytes, over the %d-byte limit", filename, zf.Name, zf.UncompressedSize64, MaxMetadataSize)
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, fmt.Errorf("read wheel %s: %w", filename, err)
	}
	defer rc.Close()
	data, err := readAll(rc, MaxMetadataSize)
	if err != nil {
		return nil, fmt.Errorf("read wheel %s: %s: %w", filename, zf.Name, err)
	}
	return data, nil
}

func (c *Client) cachePath(dir, sha string) string {
	if c.cacheDir == "" {
		return ""
	}
	return filepath.Join(c.cacheDir, dir, sha)
}

// cacheRead reports a miss for any error: the cache is an optimisation and
// the caller fetches again.
func (c *Client) cacheRead(path string) ([]byte, bool) {
	if path == "" {
		return nil, false
	}
	data, err := os.ReadFile(path)
	return data, err == nil
}

// cacheWrite stores data under path atomically: written aside, then renamed,
// so a reader never sees a partial entry. Failures are ignored for the same
// reason as in cacheRead.
func (c *Client) cacheWrite(path string, data []byte) {
	if path == "" {
		return
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".partial-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), path) != nil {
		os.Remove(tmp.Name())
	}
}

// unadvertisedMetadata tries <wheel url>.metadata although the index did
// not list it. Any failure means "not available": the caller falls back
// to the wheel itself.
func (c *Client) unadvertisedMetadata(ctx context.Context, f File) ([]byte, bool) {
	var data []byte
	err := c.get(ctx, f.URL+".metadata", "", func(r *httpretry.Response) error {
		var err error
		data, err = readAll(r.Body, MaxMetadataSize)
		return err
	})
	if err != nil {
		return nil, false
	}
	m, err := ParseMetadata(data)
	if err != nil {
		return nil, false
	}
	name, version, ok := wheelNameVersion(f.Filename)
	if !ok || Normalize(m.Name) != Normalize(name) || !sameVersion(m.Version, version) {
		return nil, false
	}
	return data, true
}

// wheelNameVersion splits a wheel file name's distribution and version.
func wheelNameVersion(filename string) (name, version string, ok bool) {
	parts := strings.Split(strings.TrimSuffix(filename, ".whl"), "-")
	if len(parts) < 5 || !strings.HasSuffix(filename, ".whl") {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// sameVersion compares a metadata version with a file name's, which
// replaces "-" by "_" and may differ in case.
func sameVersion(meta, file string) bool {
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "-", "_")) }
	return norm(meta) == norm(file)
}
