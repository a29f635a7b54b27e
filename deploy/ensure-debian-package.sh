#!/usr/bin/env bash
# Usage: ensure-debian-package.sh PACKAGE PROGRAM
# Installs Debian's PACKAGE when PROGRAM (a command on PATH, or a path) is missing; as root.
set -euo pipefail
package="$1"
program="$2"
if [[ "$program" == */* ]]; then
    [ -x "$program" ] && exit 0
elif command -v "$program" >/dev/null; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "no $program: install Debian's $package package (as root: $0 $package $program)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "$package" >/dev/null
