#!/usr/bin/env bash
# Debian's Chromium for the browser tests (tests/browser), installed when missing; as root.
exec "$(dirname "$0")/ensure-debian-package.sh" chromium "${CHROMIUM:-/usr/bin/chromium}"
