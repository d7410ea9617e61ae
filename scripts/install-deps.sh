#!/usr/bin/env bash
# Installs what building AggregateStore needs beyond a Swift toolchain: liblz4's headers.
# Idempotent; uses apt-get when run as root (or with password-less sudo), and otherwise says
# what to run.
set -euo pipefail

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
have_lz4 && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: liblz4 development files are missing; install them with your package manager (lz4 / liblz4-dev)" >&2
    exit 1
fi
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo"
else
    echo "error: liblz4-dev is missing; run: sudo apt-get install -y liblz4-dev" >&2
    exit 1
fi
echo "installing liblz4-dev..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq liblz4-dev >/dev/null
have_lz4 || { echo "error: liblz4-dev installed but lz4.h or liblz4.pc not found" >&2; exit 1; }
