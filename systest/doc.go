// Package systest holds the system tests: the bitpoll-install binary run
// inside a Debian root file system with systemd-nspawn, against real
// Bitpoll and real PyPI wheels. The package has no code of its own; the
// tests skip unless $BITPOLL_ROOTFS, root and systemd-nspawn are there.
package systest
