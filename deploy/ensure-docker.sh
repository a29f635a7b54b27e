#!/usr/bin/env bash
# Make sure a Docker engine answers, a compose command exists and debootstrap is there (for
# deploy/offline/build-images.sh): install Debian's packages when missing (root only), start
# dockerd when it is not running.
set -euo pipefail

say() { echo "ensure-docker: $*" >&2; }

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
  missing+=(docker-compose)
fi
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if ((${#missing[@]})); then
  if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    say "missing ${missing[*]}: install them (Debian: apt-get install -y ${missing[*]})"
    exit 1
  fi
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if docker info >/dev/null 2>&1; then
  exit 0
fi
if [[ $(id -u) != 0 ]]; then
  say "the Docker engine is not running and only root can start it here: start dockerd"
  exit 1
fi
say "starting dockerd (log: /var/log/dockerd.log)"
nohup dockerd >/var/log/dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
say "dockerd did not answer within 60 s: see /var/log/dockerd.log"
exit 1
