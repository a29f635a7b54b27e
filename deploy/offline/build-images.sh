#!/usr/bin/env bash
# Stand-in base images from Debian packages, for machines that cannot pull from a registry
# (air-gapped installs, CI). Reuses images that already exist; prints the variables to
# pass to docker compose:
#   eval "$(deploy/offline/build-images.sh)" && docker compose up -d --build
# Needs root (debootstrap), docker and debootstrap; DEBIAN_MIRROR picks the mirror.
set -euo pipefail
cd "$(dirname "$0")"

suite=bookworm
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
python_image="${OFFLINE_PYTHON_IMAGE:-jobsuite-offline/python:$suite}"
rabbitmq_image="${OFFLINE_RABBITMQ_IMAGE:-jobsuite-offline/rabbitmq:$suite}"
prometheus_image="${OFFLINE_PROMETHEUS_IMAGE:-jobsuite-offline/prometheus:$suite}"

exists() { docker image inspect "$1" >/dev/null 2>&1; }
say() { echo "build-images: $*" >&2; }

if ! exists "$python_image"; then
  command -v debootstrap >/dev/null || { say "debootstrap is missing: apt-get install -y debootstrap"; exit 1; }
  rootfs="$(mktemp -d)"
  trap 'rm -rf "$rootfs"' EXIT
  say "debootstrap $suite with python3 into $rootfs (a minute or two)"
  if ! debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
    tail -n 30 "$rootfs.log" >&2
    exit 1
  fi
  rm -f "$rootfs.log"
  # Trust what this host trusts: a site's TLS-inspecting proxy CA is often the only way out.
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["python3"]' \
    - "$python_image" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  say "built $python_image"
fi

if ! exists "$rabbitmq_image"; then
  say "building $rabbitmq_image from Debian's rabbitmq-server"
  docker build --quiet --tag "$rabbitmq_image" --build-arg "BASE_IMAGE=$python_image" \
    --file rabbitmq.Dockerfile . >/dev/null
  say "built $rabbitmq_image"
fi

# For the compose profile `monitoring`.
if ! exists "$prometheus_image"; then
  say "building $prometheus_image from Debian's prometheus"
  docker build --quiet --tag "$prometheus_image" --build-arg "BASE_IMAGE=$python_image" \
    --file prometheus.Dockerfile . >/dev/null
  say "built $prometheus_image"
fi

echo "export PYTHON_IMAGE=$python_image RABBITMQ_IMAGE=$rabbitmq_image" \
  "PROMETHEUS_IMAGE=$prometheus_image"
