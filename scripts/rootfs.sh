#!/usr/bin/env bash
# Builds, once, the Debian trixie root filesystem that the system tests boot
# with systemd-nspawn (systemd 257, Python 3.13) and whose nix-bin (Nix 2.26)
# evaluates the flake. Prints its path. Built aside and renamed into place,
# so an interrupted build is never mistaken for a finished one.
#
#   scripts/rootfs.sh [DIR]    default: $BITPOLL_ROOTFS, else a cache dir
set -euo pipefail

dir=${1:-${BITPOLL_ROOTFS:-${XDG_CACHE_HOME:-$HOME/.cache}/bitpoll-install-test/rootfs-trixie}}
# Bump when the package list changes, so that cached trees are rebuilt.
version=3
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
# systemd and dbus boot the container; python3 is Debian's 3.13 that the
# chroot tests install with; gettext gives msgfmt for compilemessages;
# libbpf1 lets IPAddressDeny= and friends load their BPF programs.
debootstrap --variant=minbase \
	--include=systemd,systemd-sysv,dbus,python3,python3-venv,ca-certificates,curl,libbpf1,gettext,iproute2 \
	trixie "$partial" http://deb.debian.org/debian >"$partial.log" 2>&1 || {
	tail -20 "$partial.log" >&2
	exit 1
}
# Nix 2.26 runs on the host through this tree's loader (see the README).
cp /etc/resolv.conf "$partial/etc/resolv.conf"
chroot "$partial" apt-get install -y -qq --no-install-recommends nix-bin >>"$partial.log" 2>&1 || {
	tail -20 "$partial.log" >&2
	exit 1
}
chroot "$partial" apt-get clean
# A booted container needs a machine id and no root password prompt.
: >"$partial/etc/machine-id"
echo "$version" >"$partial/.bitpoll-rootfs-version"
rm -rf "$dir"
mv "$partial" "$dir"
rm -f "$partial.log"
echo "$dir"
