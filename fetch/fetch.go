// Package fetch gets the app source into a local directory: from a
// directory, an archive (local or over https) or a git repository, through
// hashicorp/go-getter restricted to those getters. Archives are checked
// whole, then unpacked, by package safearchive. Exporting a
// tag from a local, possibly partial, git mirror is ExportGitTree. Hashing
// the result is package treehash's job.
//
// Every function that fills a destination builds the tree next to it and
// renames it into place at the end, so on error the destination is left as
// it was: absent or empty.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"

	"github.com/bitpoll-install/bitpoll-install/safearchive"
	getter "github.com/hashicorp/go-getter/v2"
)

// MaxDownloadBytes bounds the size of one downloaded archive. What an
// archive may unpack to is bounded by package safearchive's limits, and
// archives are scanned before anything is written, so a hostile archive is
// refused before it fills the disk.
const MaxDownloadBytes int64 = 256 << 20

// limits are the download limit and the unpacking limits; tests use
// smaller ones.
type limits struct {
	download int64
	unpack   safearchive.Limits
}

// Get fetches the go-getter source src into dst, which must be absent or an
// empty directory. Supported sources:
//
//   - a local directory: copied, without a top-level .git, refusing symlinks;
//   - an archive (.tar.gz, .tgz, .zip), as a local path or an http(s) URL
//     (add "?archive=tar.gz" when the URL does not end in the extension);
//     a single top-level directory, as in GitHub tarballs, is stripped;
//   - a git repository, "git::https://host/repo.git?ref=TAG" (or a local
//     path or file URL after "git::"): cloned, .git included.
//
// No credentials are looked up (no netrc, no ssh keys from the source) and
// servers cannot redirect the fetch with X-Terraform-Get.
func Get(ctx context.Context, src, dst string) error {
	return GetLimited(ctx, src, dst, safearchive.Default())
}

// GetLimited is Get with unpack as the limits on an archive's members
// (the command line's --unpack-* flags).
func GetLimited(ctx context.Context, src, dst string, unpack safearchive.Limits) error {
	if unpack == (safearchive.Limits{}) {
		unpack = safearchive.Default()
	}
	return get(ctx, src, dst, limits{download: MaxDownloadBytes, unpack: unpack})
}

func get(ctx context.Context, src, dst string, lim limits) error {
	pwd, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("get %q: %w", src, err)
	}
	err = stage(dst, func(tmp string) error {
		// Getters are tried in this order; each takes only the sources its
		// Detect accepts (git:: or GitHub shorthand, http(s) URLs, local
		// paths).
		c := &getter.Client{
			Getters: []getter.Getter{
				&gitGetter{GitGetter: getter.GitGetter{Detectors: []getter.Detector{
					new(getter.GitHubDetector),
					new(getter.GitDetector),
				}}},
				newHTTPGetter(lim),
				new(dirGetter),
			},
			Decompressors:   decompressors(lim),
			DisableSymlinks: true,
		}
		req := &getter.Request{
			Src:     src,
			Dst:     tmp,
			Pwd:     pwd,
			GetMode: getter.ModeDir,
			Copy:    true,
		}
		if _, err := c.Get(ctx, req); err != nil {
			return err
		}
		if _, err := os.Lstat(tmp); err != nil {
			return fmt.Errorf("source gave no files: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("get %q into %q: %w", src, dst, err)
	}
	return nil
}

// stage runs fill with a path next to dst that does not exist yet, then
// renames what fill created to dst. dst must be absent or an empty
// directory; on error it is left untouched.
func stage(dst string, fill func(tmp string) error) error {
	if des, err := os.ReadDir(dst); err == nil && len(des) > 0 {
		return fmt.Errorf("destination %q is not empty: give a new or empty directory", dst)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dst)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp(parent, ".fetch-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	tmp := filepath.Join(work, "tree")
	if err := fill(tmp); err != nil {
		return err
	}
	// os.Rename refuses an existing directory, even an empty one. Remove
	// fails on a directory that is not empty, so nothing is lost.
	if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.Rename(tmp, dst)
}

// gitGetter is go-getter's git getter without its ssh key parameter, which
// would put a private key into the source string.
type gitGetter struct {
	getter.GitGetter
}

func (g *gitGetter) Get(ctx context.Context, req *getter.Request) error {
	if err := refuseSSHKey(req.URL()); err != nil {
		return err
	}
	return g.GitGetter.Get(ctx, req)
}

// GetFile is what go-getter calls for a git source that names an archive;
// it clones the repository too.
func (g *gitGetter) GetFile(ctx context.Context, req *getter.Request) error {
	if err := refuseSSHKey(req.URL()); err != nil {
		return err
	}
	return g.GitGetter.GetFile(ctx, req)
}

func refuseSSHKey(u *url.URL) error {
	if u.Query().Has("sshkey") {
		return errors.New("git sources may not carry an sshkey parameter: configure ssh outside the installer")
	}
	return nil
}

// httpGetter downloads archives only: go-getter's directory protocol for
// plain URLs would let the server choose what is fetched.
type httpGetter struct {
	getter.HttpGetter
}

func newHTTPGetter(lim limits) *httpGetter {
	// go-getter's own MaxBytes cuts the body short without saying why, so
	// the limit is enforced by the transport instead.
	base := http.DefaultTransport.(*http.Transport).Clone()
	return &httpGetter{HttpGetter: getter.HttpGetter{
		Netrc:                 false,
		XTerraformGetDisabled: true,
		// The HEAD request is for resuming into an existing file; every
		// download here starts from an empty one.
		DoNotCheckHeadFirst: true,
		Client:              &http.Client{Transport: &limitTransport{base: base, max: lim.download}},
	}}
}

func (g *httpGetter) Get(ctx context.Context, req *getter.Request) error {
	return fmt.Errorf("%s is not an archive: use a URL ending in .tar.gz, .tgz or .zip, or add ?archive=tar.gz", req.URL().Redacted())
}

// limitTransport fails responses whose body is larger than max bytes.
type limitTransport struct {
	base http.RoundTripper
	max  int64
}

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	tooLarge := fmt.Errorf("download of %s is larger than %d bytes (fetch.MaxDownloadBytes)", req.URL.Redacted(), t.max)
	if resp.ContentLength > t.max {
		resp.Body.Close()
		return nil, tooLarge
	}
	resp.Body = &limitBody{ReadCloser: resp.Body, left: t.max, err: tooLarge}
	return resp, nil
}

// limitBody returns err once more than left bytes have been read.
type limitBody struct {
	io.ReadCloser
	left int64
	err  error
}

func (b *limitBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, b.err
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return 0, b.err
	}
	return n, err
}
