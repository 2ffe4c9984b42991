// Package bitpollinstall holds what ships inside the binary: the default
// lock, so that `bitpoll-install run` works without any file at hand.
package bitpollinstall

import _ "embed"

// DefaultLock is the committed bitpoll.lock.
//
//go:embed bitpoll.lock
var DefaultLock []byte
