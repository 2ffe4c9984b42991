package store

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"strings"
)

// LayoutVersion is hashed into every Key. Bump it when the content or
// shape of a store path changes for the same inputs, so old and new builds
// never share a path.
const LayoutVersion = 1

// KeyLen is the length of a Key: 160 bits in base32.
const KeyLen = 32

// nixAlphabet is Nix's base32 alphabet (no e, o, u, t), so keys look and
// sort like Nix store hashes.
const nixAlphabet = "0123456789abcdfghijklmnpqrsvwxyz"

// Key returns the input address of a store path: sha256 over the layout
// version and each part prefixed by its length, so that ("ab","c") and
// ("a","bc") differ, truncated to 160 bits and rendered as KeyLen chars of
// Nix-style base32. Callers pass everything that decides the content: the
// lock's package entries, the app tree id and the interpreter identity.
func Key(parts ...string) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	write := func(s string) {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	write("bitpoll-store-layout-" + strconv.Itoa(LayoutVersion))
	for _, p := range parts {
		write(p)
	}
	return nixBase32(h.Sum(nil)[:20])
}

// nixBase32 encodes b the way Nix prints hashes: 5-bit groups taken from
// the end of the byte string, so the output is not RFC 4648 base32.
func nixBase32(b []byte) string {
	n := (len(b)*8 + 4) / 5
	out := make([]byte, 0, n)
	for i := n - 1; i >= 0; i-- {
		bit := i * 5
		j, k := bit/8, uint(bit%8)
		c := b[j] >> k
		if j+1 < len(b) {
			c |= b[j+1] << (8 - k)
		}
		out = append(out, nixAlphabet[c&0x1f])
	}
	return string(out)
}

// validKey reports whether k has the shape Key produces.
func validKey(k string) bool {
	if len(k) != KeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if strings.IndexByte(nixAlphabet, k[i]) < 0 {
			return false
		}
	}
	return true
}
