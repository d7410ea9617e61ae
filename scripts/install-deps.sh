#!/usr/bin/env bash
# Installs what building AggregateStore needs beyond a Swift toolchain: liblz4's headers, and
# with `--bench` SQLite's too (GRDB, in the Benchmarks package, links the system SQLite).
# Idempotent; uses apt-get when run as root (or with password-less sudo), and otherwise says
# what to run.
set -euo pipefail

bench=false
[ "${1:-}" = "--bench" ] && bench=true

if ! command -v swift >/dev/null 2>&1; then
    echo "error: no Swift toolchain on PATH; install Swift 6.2 or later (https://www.swift.org/install/)" >&2
    exit 1
fi

have_lz4() {
    [ -f /usr/include/lz4.h ] || return 1
    for pc in /usr/lib/*/pkgconfig/liblz4.pc /usr/lib/pkgconfig/liblz4.pc /usr/share/pkgconfig/liblz4.pc; do
        [ -f "$pc" ] && return 0
    done
    return 1
}
have_sqlite() {
    [ -f /usr/include/sqlite3.h ]
}
packages=()
have_lz4 || packages+=(liblz4-dev)
$bench && ! have_sqlite && packages+=(libsqlite3-dev)
[ ${#packages[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: missing development files (${packages[*]}); install them with your package manager" >&2
    exit 1
fi
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo"
else
    echo "error: ${packages[*]} missing; run: sudo apt-get install -y ${packages[*]}" >&2
    exit 1
fi
echo "installing ${packages[*]}..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${packages[@]}" >/dev/null
have_lz4 || { echo "error: liblz4-dev installed but lz4.h or liblz4.pc not found" >&2; exit 1; }
if $bench; then have_sqlite || { echo "error: libsqlite3-dev installed but sqlite3.h not found" >&2; exit 1; }; fi
