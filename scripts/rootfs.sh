#!/usr/bin/env bash
# Builds, once, a Debian root filesystem that the system tests boot with
# systemd-nspawn, and prints its path. Built aside and renamed into place,
# so an interrupted build is never mistaken for a finished one.
#
#   trixie    Debian 13: systemd 257, Python 3.13, and nix-bin (Nix 2.26)
#             that evaluates the flake. The default.
#   bookworm  Debian 12: systemd 252, Python 3.11, too old for Bitpoll
#             0.11.0, so its tests install a standalone interpreter.
#
#   scripts/rootfs.sh [--suite trixie|bookworm] [DIR]
#
# DIR defaults to $BITPOLL_ROOTFS (trixie) or $BITPOLL_ROOTFS_BOOKWORM
# (bookworm), else rootfs-SUITE in the test cache directory.
set -euo pipefail

suite=trixie
if [[ ${1:-} == --suite ]]; then
	suite=${2:?rootfs: --suite needs trixie or bookworm}
	shift 2
fi
cache=${XDG_CACHE_HOME:-$HOME/.cache}/bitpoll-install-test
# systemd and dbus boot the container; python3 is Debian's own, that the
# chroot tests install with; gettext gives msgfmt for compilemessages;
# libbpf1 lets IPAddressDeny= and friends load their BPF programs.
include=systemd,systemd-sysv,dbus,python3,python3-venv,ca-certificates,curl,libbpf1,gettext,iproute2
# Bump a suite's version when its package list changes, so that cached
# trees are rebuilt.
case $suite in
trixie)
	dir=${1:-${BITPOLL_ROOTFS:-$cache/rootfs-trixie}}
	version=3
	extra=(nix-bin) # Nix 2.26 runs on the host through this tree's loader (see the README)
	;;
bookworm)
	dir=${1:-${BITPOLL_ROOTFS_BOOKWORM:-$cache/rootfs-bookworm}}
	version=bookworm-1
	extra=()
	;;
*)
	echo "rootfs: unknown suite \"$suite\": want trixie or bookworm" >&2
	exit 2
	;;
esac
stamp=$dir/.bitpoll-rootfs-version

if [[ -f $stamp && $(cat "$stamp") == "$version" ]]; then
	echo "$dir"
	exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "rootfs: building $dir needs root (debootstrap)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! command -v debootstrap >/dev/null || ! command -v systemd-nspawn >/dev/null; then
	apt-get update -qq
	apt-get install -y -qq debootstrap systemd-container >/dev/null
fi

partial=$dir.partial
rm -rf "$partial"
mkdir -p "$(dirname "$dir")"
debootstrap --variant=minbase --include="$include" \
	"$suite" "$partial" http://deb.debian.org/debian >"$partial.log" 2>&1 || {
	tail -20 "$partial.log" >&2
	exit 1
}
if ((${#extra[@]})); then
	cp /etc/resolv.conf "$partial/etc/resolv.conf"
	chroot "$partial" apt-get install -y -qq --no-install-recommends "${extra[@]}" >>"$partial.log" 2>&1 || {
		tail -20 "$partial.log" >&2
		exit 1
	}
fi
chroot "$partial" apt-get clean
# A booted container needs a machine id and no root password prompt.
: >"$partial/etc/machine-id"
echo "$version" >"$partial/.bitpoll-rootfs-version"
rm -rf "$dir"
mv "$partial" "$dir"
rm -f "$partial.log"
echo "$dir"
