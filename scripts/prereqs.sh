#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian-like machine, and
# nothing when it is already there. Run as root (apt) or with the tools
# already present.
set -euo pipefail

need_apt=()
command -v git >/dev/null || need_apt+=(git)
# msgfmt compiles the apps' translations at build time.
command -v msgfmt >/dev/null || need_apt+=(gettext)
# nix-bin gives `nix hash path`, the cross-check of the lock's NAR hashes.
command -v nix >/dev/null || need_apt+=(nix-bin)
command -v python3 >/dev/null || need_apt+=(python3 python3-pip python3-venv)
# A PostgreSQL server and its client tools: the tests start throwaway
# clusters (initdb) and snapshot them with pg_dump before migrations.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null || need_apt+=(postgresql)
command -v pg_dump >/dev/null || need_apt+=(postgresql-client)
if ((${#need_apt[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "prereqs: missing ${need_apt[*]}: install them, or run as root" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v go >/dev/null; then
	echo "prereqs: Go 1.26 or newer is required (https://go.dev/dl/)" >&2
	exit 1
fi

# staticcheck, pinned, from the Go module proxy.
gobin=$(go env GOPATH)/bin
if [[ ! -x $gobin/staticcheck ]]; then
	go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi

# packaging is the reference for the PEP 440/508 differential tests, uv the
# peer for the pylock cross-check and the lock benchmark.
py_missing=()
python3 -c 'import packaging' 2>/dev/null || py_missing+=(packaging)
command -v uv >/dev/null || py_missing+=(uv)
if ((${#py_missing[@]})); then
	python3 -m pip install --quiet "${py_missing[@]}" ||
		python3 -m pip install --quiet --break-system-packages "${py_missing[@]}"
fi

# The Debian trixie tree that the system tests boot with systemd-nspawn,
# and whose Nix 2.26 evaluates the flake; the Debian 12 tree (Python 3.11)
# and the CPython 3.13 archive, built in it, that its test serves as a
# standalone interpreter. Building them needs root.
if [[ $(id -u) -eq 0 ]]; then
	"$(dirname "$0")/rootfs.sh" >/dev/null
	"$(dirname "$0")/rootfs.sh" --suite bookworm >/dev/null
	"$(dirname "$0")/standalone-python.sh" >/dev/null
else
	echo "prereqs: not root: the system tests (systemd-nspawn) will skip" >&2
fi
