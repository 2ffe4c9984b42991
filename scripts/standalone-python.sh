#!/usr/bin/env bash
# Builds, once, the CPython archive that the Debian 12 system test serves
# as a standalone interpreter, and prints its path. GitHub, where
# python-build-standalone publishes its archives, is out of reach of the
# test machines, so this builds one in the same layout: CPython's release
# source, as Debian's archive carries it (the .orig.tar.xz, checked by
# its sha256), compiled inside the Debian 12 tree of
# `scripts/rootfs.sh --suite bookworm` (glibc 2.36), so that it runs there
# and on anything newer.
#
# The archive has python-build-standalone's `install_only_stripped`
# layout: a .tar.gz whose one top directory is python/, with
# python/bin/python3.13 and python/lib/python3.13/, stripped, built for
# the prefix /install and relocatable (libpython is linked into the
# executable, and the bin/ scripts find their interpreter beside them).
# Unlike python-build-standalone, which links OpenSSL, libffi, SQLite and
# the compression libraries statically, it links Debian 12's shared
# libraries (libssl3, libffi8, libsqlite3-0, zlib1g, libbz2-1.0, liblzma5,
# libuuid1): Debian's own python3 pulls in every one of them, and the
# build checks that each extension module finds its libraries in the
# plain tree. It has no readline, curses, dbm.gnu or tkinter.
#
# The result is cached under a name made of the source's and this
# script's hashes, built aside and renamed into place.
#
#   scripts/standalone-python.sh [ROOTFS]   ROOTFS: the bookworm tree
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
version=3.13.5
minor=3.13
src_url=http://deb.debian.org/debian/pool/main/p/python3.13/python3.13_${version}.orig.tar.xz
src_sha256=93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640
cache=${XDG_CACHE_HOME:-$HOME/.cache}/bitpoll-install-test
name=cpython-${version}-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz

key=$( (
	echo "$src_sha256"
	cat "$0"
) | sha256sum | cut -c1-16)
out=$cache/standalone-python-$key
if [[ -f $out/$name ]]; then
	echo "$out/$name"
	exit 0
fi
if [[ $(uname -m) != x86_64 ]]; then
	echo "standalone-python: builds for x86_64 only, this machine is $(uname -m)" >&2
	exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "standalone-python: building $out needs root (systemd-nspawn)" >&2
	exit 1
fi
rootfs=${1:-$("$here/rootfs.sh" --suite bookworm)}

# The source, downloaded once and checked.
src=$cache/downloads/python3.13_${version}.orig.tar.xz
if [[ ! -f $src ]] || ! echo "$src_sha256  $src" | sha256sum -c --quiet - 2>/dev/null; then
	mkdir -p "$(dirname "$src")"
	curl -fsSL --retry 3 -o "$src.partial" "$src_url"
	if ! echo "$src_sha256  $src.partial" | sha256sum -c --quiet - 2>/dev/null; then
		echo "standalone-python: $src_url: sha256 $(sha256sum "$src.partial" | cut -d' ' -f1), want $src_sha256" >&2
		rm -f "$src.partial"
		exit 1
	fi
	mv "$src.partial" "$src"
fi

partial=$out.partial
rm -rf "$partial"
mkdir -p "$partial/build"
trap 'rm -rf "$partial"' EXIT
tar -xJf "$src" -C "$partial/build"
mv "$partial/build/Python-$version" "$partial/build/src"

# run ARGS...: a command in the bookworm tree, on a throwaway overlay, with
# the build directory at /build.
run() {
	systemd-nspawn -D "$rootfs" --register=no --keep-unit --quiet --volatile=overlay \
		--bind="$partial/build:/build" --chdir=/build --setenv=DEBIAN_FRONTEND=noninteractive "$@"
}

# The build, inside the tree; MINOR is the version's major.minor.
cat >"$partial/build/build.sh" <<'EOS'
set -eu
apt-get update -qq
apt-get install -y -qq --no-install-recommends build-essential pkg-config \
	libssl-dev libffi-dev zlib1g-dev libsqlite3-dev libbz2-dev liblzma-dev uuid-dev >/dev/null
cd /build/src
./configure -q --prefix=/install --with-ensurepip=install --disable-test-modules \
	--with-system-libmpdec=no --with-system-expat=no
make -s -j"$(nproc)" >/build/make.log 2>&1 || { tail -40 /build/make.log; exit 1; }
make -s install DESTDIR=/build/stage >/build/install.log 2>&1 || { tail -40 /build/install.log; exit 1; }
mv /build/stage/install /build/python
cd /build/python
# Stripped like install_only_stripped. The executable keeps its dynamic
# symbols, which the extension modules link against.
find . -type f \( -name '*.so' -o -name '*.so.*' -o -path "./bin/python$MINOR" \) -exec strip --strip-unneeded {} +
rm -f "lib/libpython$MINOR.a" "lib/python$MINOR/config-$MINOR-x86_64-linux-gnu/libpython$MINOR.a"
# The bin/ scripts name /install/bin/python$MINOR: they run the
# interpreter beside them instead, wherever the tree is.
for f in bin/*; do
	[ -f "$f" ] && [ ! -L "$f" ] || continue
	head -n1 "$f" | grep -q '^#!/install/bin/python' || continue
	{
		echo '#!/bin/sh'
		echo "'''exec' \"\$(dirname -- \"\$(realpath -- \"\$0\")\")/python$MINOR\" \"\$0\" \"\$@\""
		echo "' '''"
		tail -n +2 "$f"
	} >"$f.new"
	chmod 755 "$f.new"
	mv "$f.new" "$f"
done
# The newest glibc symbol version that anything here needs.
objdump -T "bin/python$MINOR" $(find lib -name '*.so') | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1 >/build/glibc
EOS
start=$(date +%s)
run --setenv=MINOR=$minor sh /build/build.sh >"$partial/build.log" 2>&1 || {
	tail -40 "$partial/build.log" >&2
	exit 1
}
built=$(($(date +%s) - start))

# The plain tree, without the build's packages: moved elsewhere, the
# interpreter runs, finds its standard library, and every extension module
# loads.
mv "$partial/build/python" "$partial/build/moved"
run --bind="$partial/build/moved:/opt/elsewhere/python" /opt/elsewhere/python/bin/python$minor -I -c "
import sys, glob, importlib, os
assert sys.prefix == '/opt/elsewhere/python', sys.prefix
for so in sorted(glob.glob(os.path.join(sys.prefix, 'lib/python$minor/lib-dynload/*.so'))):
    importlib.import_module(os.path.basename(so).split('.')[0])
import ssl, sqlite3, ctypes, lzma, bz2, zlib, uuid, decimal, hashlib, venv, ensurepip
print(sys.version, ssl.OPENSSL_VERSION, 'sqlite', sqlite3.sqlite_version)
" >"$partial/check.log" 2>&1 || {
	tail -20 "$partial/check.log" >&2
	exit 1
}
mv "$partial/build/moved" "$partial/build/python"

# The files keep their times: the standard library's bytecode, compiled
# by `make install`, records its source's mtime, and stays valid so.
tar --sort=name --owner=0 --group=0 --numeric-owner -C "$partial/build" -cf - python |
	gzip -n -6 >"$partial/$name"
{
	echo "source: $src_url"
	echo "source sha256: $src_sha256"
	echo "newest glibc symbol: $(cat "$partial/build/glibc")"
	echo "built in: ${built}s"
	echo "runs in the plain tree: $(grep -m1 '^3\.' "$partial/check.log")"
} >"$partial/BUILDINFO"
rm -rf "$partial/build"
trap - EXIT
rm -rf "$out"
mv "$partial" "$out"
cat "$out/BUILDINFO" >&2
echo "$out/$name"
