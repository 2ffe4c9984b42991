package fetch

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/bitpoll-install/bitpoll-install/safearchive"
	getter "github.com/hashicorp/go-getter/v2"
)

// sourcePolicy is what a source archive may hold: regular files and
// directories only, a leading "./" allowed. The tree is hashed as git
// would, and a link in it could point anywhere on the machine.
func sourcePolicy(lim safearchive.Limits) safearchive.Policy {
	return safearchive.Policy{Limits: lim, DotSlash: true}
}

// decompressors returns the archive formats Get unpacks, all through
// safearchive: go-getter's own extractors do not refuse absolute names or
// links (a symlink member becomes a regular file).
func decompressors(lim limits) map[string]getter.Decompressor {
	d := &checkedDecompressor{policy: sourcePolicy(lim.unpack)}
	return map[string]getter.Decompressor{"tar.gz": d, "tgz": d, "zip": d}
}

// checkedDecompressor unpacks an archive next to dst with safearchive and
// moves the result to dst, dropping a single top-level directory.
type checkedDecompressor struct {
	policy safearchive.Policy
}

func (d *checkedDecompressor) Decompress(dst, src string, dir bool, umask os.FileMode) error {
	if !dir {
		return fmt.Errorf("archive %q: only whole directories are unpacked", src)
	}
	unpack, err := os.MkdirTemp(filepath.Dir(dst), ".unpack-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(unpack)
	root := filepath.Join(unpack, "root")
	if err := safearchive.Extract(src, root, d.policy); err != nil {
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
