package treehash

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// EmptyGitTree is the id git gives a tree without files.
const EmptyGitTree = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"

// GitTree returns the git tree id (40 lowercase hex digits, SHA-1) that
// `git add -A && git write-tree` would record for the files under dir.
//
// Regular files are blobs with mode 100755 if the owner may execute them and
// 100644 otherwise; symlinks are blobs holding their target (mode 120000).
// Directories without files are left out, as git does. A top-level ".git"
// is skipped; a ".git" deeper down is an error because git would store it as
// a submodule, not as files.
func GitTree(dir string) (string, error) {
	id, ok, err := gitTree(dir, true)
	if err != nil {
		return "", fmt.Errorf("hash git tree of %q: %w", dir, err)
	}
	if !ok {
		return EmptyGitTree, nil
	}
	return hex.EncodeToString(id), nil
}

type gitEntry struct {
	mode string
	name string
	id   []byte
}

// key is the name git sorts by: a subtree sorts as if its name ended in "/".
func (e gitEntry) key() string {
	if e.mode == "40000" {
		return e.name + "/"
	}
	return e.name
}

// gitTree hashes the tree at dir. ok is false if dir holds no files, in
// which case git records nothing for it.
func gitTree(dir string, top bool) (id []byte, ok bool, err error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, false, err
	}
	var entries []gitEntry
	for _, de := range des {
		name := de.Name()
		path := filepath.Join(dir, name)
		if name == ".git" {
			if top {
				continue
			}
			return nil, false, fmt.Errorf("nested %q: git would record it as a submodule, remove it first", path)
		}
		e := gitEntry{name: name}
		switch t := de.Type(); {
		case t.IsDir():
			sub, ok, err := gitTree(path, false)
			if err != nil {
				return nil, false, err
			}
			if !ok {
				continue
			}
			e.mode, e.id = "40000", sub
		case t&os.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return nil, false, err
			}
			h := sha1.New()
			fmt.Fprintf(h, "blob %d\x00%s", len(target), target)
			e.mode, e.id = "120000", h.Sum(nil)
		case t.IsRegular():
			info, err := de.Info()
			if err != nil {
				return nil, false, err
			}
			e.mode = "100644"
			if isExec(info.Mode()) {
				e.mode = "100755"
			}
			if e.id, err = gitBlob(path); err != nil {
				return nil, false, err
			}
		default:
			return nil, false, unsupported(path, t)
		}
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return nil, false, nil
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].key() < entries[j].key() })
	var body []byte
	for _, e := range entries {
		body = append(body, e.mode...)
		body = append(body, ' ')
		body = append(body, e.name...)
		body = append(body, 0)
		body = append(body, e.id...)
	}
	h := sha1.New()
	io.WriteString(h, "tree "+strconv.Itoa(len(body))+"\x00")
	h.Write(body)
	return h.Sum(nil), true, nil
}

// gitBlob returns the blob id of the regular file at path.
func gitBlob(path string) ([]byte, error) {
	h := sha1.New()
	err := copyFile(h, path, func(size int64) error {
		_, err := fmt.Fprintf(h, "blob %d\x00", size)
		return err
	})
	if err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
