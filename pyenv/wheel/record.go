package wheel

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
)

// recordEntry is one row of a RECORD file: a slash-separated path, a hash
// written as "algo=urlsafe-base64" (empty for RECORD itself) and a size in
// bytes (-1 when the field is empty).
type recordEntry struct {
	Path string
	Hash string
	Size int64
}

// hashAlgos are the digests the binary distribution format allows in
// RECORD: sha256 or stronger, never md5 or sha1.
var hashAlgos = map[string]struct {
	size int
	new  func() hash.Hash
}{
	"sha256": {sha256.Size, sha256.New},
	"sha384": {sha512.Size384, sha512.New384},
	"sha512": {sha512.Size, sha512.New},
}

// parseHash splits "algo=digest" and decodes the digest.
func parseHash(s string) (algo string, digest []byte, err error) {
	algo, enc, ok := strings.Cut(s, "=")
	if !ok {
		return "", nil, fmt.Errorf("hash %q is not of the form algo=digest", s)
	}
	a, ok := hashAlgos[algo]
	if !ok {
		return "", nil, fmt.Errorf("hash %q uses algorithm %q, want sha256, sha384 or sha512", s, algo)
	}
	// Writers strip the base64 padding; accept it when present anyway.
	digest, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(enc, "="))
	if err != nil || len(digest) != a.size {
		return "", nil, fmt.Errorf("hash %q is not a %d-byte %s digest in urlsafe base64", s, a.size, algo)
	}
	return algo, digest, nil
}

// formatHash is the RECORD form of a digest.
func formatHash(algo string, digest []byte) string {
	return algo + "=" + base64.RawURLEncoding.EncodeToString(digest)
}

// parseRecord reads a RECORD file. It checks the syntax of every row and
// that no path repeats; which rows may omit hash and size is left to the
// caller, which knows the dist-info directory.
func parseRecord(r io.Reader) ([]recordEntry, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	var out []recordEntry
	seen := make(map[string]bool)
	for {
		row, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("parse RECORD: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(row) != 3 {
			return nil, fmt.Errorf("parse RECORD: line %d has %d fields, want 3 (path,hash,size)", line, len(row))
		}
		e := recordEntry{Path: row[0], Hash: row[1], Size: -1}
		if e.Path == "" {
			return nil, fmt.Errorf("parse RECORD: line %d has an empty path", line)
		}
		if seen[e.Path] {
			return nil, fmt.Errorf("parse RECORD: line %d lists %q again", line, e.Path)
		}
		seen[e.Path] = true
		if e.Hash != "" {
			if _, _, err := parseHash(e.Hash); err != nil {
				return nil, fmt.Errorf("parse RECORD: line %d: %w", line, err)
			}
		}
		if row[2] != "" {
			e.Size, err = parseSize(row[2])
			if err != nil {
				return nil, fmt.Errorf("parse RECORD: line %d: %w", line, err)
			}
		}
		out = append(out, e)
	}
}

// parseSize accepts plain decimal digits only, so that every size has one
// spelling.
func parseSize(s string) (int64, error) {
	if strings.TrimLeft(s, "0123456789") != "" || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("size %q is not a decimal number of bytes", s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q is out of range", s)
	}
	return n, nil
}

// formatRecord writes entries as CSV with "\n" line ends, as pip does.
func formatRecord(entries []recordEntry) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	for _, e := range entries {
		size := ""
		if e.Size >= 0 {
			size = strconv.FormatInt(e.Size, 10)
		}
		if err := w.Write([]string{e.Path, e.Hash, size}); err != nil {
			return nil, err
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
