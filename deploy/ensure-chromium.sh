#!/usr/bin/env bash
# Debian's Chromium for the browser tests (tests/browser), installed when missing; as root.
set -euo pipefail
chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ -x "$chromium" ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "no Chromium at $chromium: install Debian's chromium package (as root: $0)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
