#!/usr/bin/env bash
# Debian's wrk, the C load generator the gateway's accept benchmark drives (benchmarks/wrk.py),
# installed when missing; as root.
set -euo pipefail
if command -v wrk >/dev/null; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "no wrk on PATH: install Debian's wrk package (as root: $0)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq wrk >/dev/null
