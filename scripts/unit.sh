#!/usr/bin/env bash
# Runs every test, the way `make test` does after its prerequisites and
# linters, and ends with one summary line (internal/testreport): how many
# tests ran, passed, failed and skipped, and why they skipped.
#
# Prerequisites it finds by itself when their variables are unset:
#   BITPOLL_ROOTFS    the cached tree of scripts/rootfs.sh, if it is built;
#   BITPOLL_ROOTFS_BOOKWORM, BITPOLL_STANDALONE_PYTHON  the same for
#                     `rootfs.sh --suite bookworm` and standalone-python.sh;
#   BITPOLL_MIRROR,   the mirrors in ../shared/fixtures beside the project
#   BITPOLL_NIXPKGS   root (CI), unpacked once by scripts/fixtures.sh.
# With CI=true a test that misses one fails, and so does the run if a test
# skips without being listed in .ci/intended-skips.
#
#   scripts/unit.sh [go test flags]
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}

if [[ -z ${BITPOLL_ROOTFS:-} ]]; then
	BITPOLL_ROOTFS=$(./scripts/rootfs.sh 2>/dev/null) || BITPOLL_ROOTFS=
fi
if [[ -z ${BITPOLL_ROOTFS_BOOKWORM:-} ]]; then
	BITPOLL_ROOTFS_BOOKWORM=$(./scripts/rootfs.sh --suite bookworm 2>/dev/null) || BITPOLL_ROOTFS_BOOKWORM=
fi
if [[ -z ${BITPOLL_STANDALONE_PYTHON:-} && -n $BITPOLL_ROOTFS_BOOKWORM ]]; then
	BITPOLL_STANDALONE_PYTHON=$(./scripts/standalone-python.sh 2>/dev/null) || BITPOLL_STANDALONE_PYTHON=
fi
export BITPOLL_ROOTFS BITPOLL_ROOTFS_BOOKWORM BITPOLL_STANDALONE_PYTHON
# Assigned first, so that a fixture that cannot be unpacked stops the run.
fixtures=$(./scripts/fixtures.sh)
eval "$fixtures"
export BITPOLL_MIRROR BITPOLL_NIXPKGS
for v in BITPOLL_ROOTFS BITPOLL_ROOTFS_BOOKWORM BITPOLL_STANDALONE_PYTHON BITPOLL_MIRROR BITPOLL_NIXPKGS; do
	echo "unit: $v=${!v:-(unset: the tests that need it skip, or fail with CI=true)}"
done

# Built first, so that a broken reporter shows as such and not as a
# failed test run.
report=$(mktemp -d)
trap 'rm -rf "$report"' EXIT
$GO build -o "$report/testreport" ./internal/testreport

# pipefail: the run fails when go test or the report does.
$GO test -json -count=1 -timeout 60m "$@" ./... | "$report/testreport" -intended .ci/intended-skips
