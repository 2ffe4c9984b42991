#!/usr/bin/env bash
# Finds the test mirrors that CI provides as tar files and unpacks each, once,
# into the test cache. Prints shell assignments for the variables it could
# set, for `eval`:
#
#   BITPOLL_MIRROR=...    from bitpoll-mirror.tar       (a bare git mirror of Bitpoll)
#   BITPOLL_NIXPKGS=...   from nixpkgs-slim-mirror.tar  (a bare git mirror of nixpkgs-slim)
#
# A variable that is already set is left alone, so that the documented
# variables keep working. The fixtures are looked for in $BITPOLL_FIXTURES,
# else in ../shared/fixtures beside the project root (where CI puts them).
# Each tar holds one bare repository, repo/. It is unpacked beside its
# final place and renamed, into a directory named after the tar's SHA-256,
# so a changed fixture is unpacked anew and a half-unpacked one is never
# used.
#
#   scripts/fixtures.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
fixtures=${BITPOLL_FIXTURES:-$(dirname "$root")/shared/fixtures}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/bitpoll-install-test/fixtures

# unpack TAR: prints the path of its repo/ in the cache.
unpack() {
	local tar=$1 name sum dir
	name=$(basename "$tar" .tar)
	sum=$(sha256sum "$tar" | cut -c1-16)
	dir=$cache/$name-$sum
	if [[ ! -d $dir/repo ]]; then
		mkdir -p "$cache"
		rm -rf "$dir.partial"
		mkdir "$dir.partial"
		tar -xf "$tar" -C "$dir.partial" || {
			echo "fixtures: unpack $tar: tar failed" >&2
			rm -rf "$dir.partial"
			return 1
		}
		if ! git --git-dir="$dir.partial/repo" rev-parse --verify -q HEAD >/dev/null 2>&1; then
			echo "fixtures: $tar: repo/ is not a git repository with a HEAD; want a tar of one bare repository, repo/" >&2
			rm -rf "$dir.partial"
			return 1
		fi
		rm -rf "$dir"
		mv "$dir.partial" "$dir"
	fi
	echo "$dir/repo"
}

# set VAR TARNAME: prints VAR=path when VAR is unset and the tar exists.
set_from() {
	local var=$1 tar=$fixtures/$2 path
	[[ -z ${!var:-} && -f $tar ]] || return 0
	path=$(unpack "$tar")
	printf '%s=%q\n' "$var" "$path"
}

set_from BITPOLL_MIRROR bitpoll-mirror.tar
set_from BITPOLL_NIXPKGS nixpkgs-slim-mirror.tar
