#!/usr/bin/env bash
# Debian's wrk, the C load generator the gateway's accept benchmark drives (benchmarks/wrk.py),
# installed when missing; as root.
exec "$(dirname "$0")/ensure-debian-package.sh" wrk wrk
