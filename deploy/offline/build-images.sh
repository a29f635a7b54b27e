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
# The images built from a Dockerfile here carry its hash (and its scripts') in their tag, so
# an edited stand-in is built again rather than an old one reused.
digest() { cat "$@" | sha256sum | cut -c1-12; }
rabbitmq_image="${OFFLINE_RABBITMQ_IMAGE:-jobsuite-offline/rabbitmq:$suite-$(digest rabbitmq.Dockerfile)}"
prometheus_image="${OFFLINE_PROMETHEUS_IMAGE:-jobsuite-offline/prometheus:$suite-$(digest prometheus.Dockerfile)}"
postgres_image="${OFFLINE_POSTGRES_IMAGE:-jobsuite-offline/postgres:$suite-$(digest postgres.Dockerfile postgres-entrypoint.sh)}"
s3_image="${OFFLINE_S3_IMAGE:-jobsuite-offline/s3:$suite-$(digest s3.Dockerfile s3-standin.sh s3-standin-mc.sh)}"

exists() { docker image inspect "$1" >/dev/null 2>&1; }
say() { echo "build-images: $*" >&2; }
stand_in() {  # image, Dockerfile, what it is built from
  if ! exists "$1"; then
    say "building $1 from $3"
    docker build --quiet --tag "$1" --build-arg "BASE_IMAGE=$python_image" --file "$2" . >/dev/null
    say "built $1"
  fi
}

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

stand_in "$rabbitmq_image" rabbitmq.Dockerfile "Debian's rabbitmq-server"
# For the compose profile `monitoring`.
stand_in "$prometheus_image" prometheus.Dockerfile "Debian's prometheus"
# For deploy/compose.cluster.yml.
stand_in "$postgres_image" postgres.Dockerfile "Debian's postgresql"
stand_in "$s3_image" s3.Dockerfile "moto's S3 server (pip)"

echo "export PYTHON_IMAGE=$python_image RABBITMQ_IMAGE=$rabbitmq_image" \
  "PROMETHEUS_IMAGE=$prometheus_image POSTGRES_IMAGE=$postgres_image S3_IMAGE=$s3_image"
