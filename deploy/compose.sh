#!/usr/bin/env bash
# Compose, whichever this machine has: the `docker compose` plugin (v2) where the Docker client
# has it, else `docker-compose` (v1). The arguments are passed on unchanged; `make up`,
# `make down` and tests/compose use it, so docker-compose.yml must stay valid for both.
set -euo pipefail

if docker compose version >/dev/null 2>&1; then
  exec docker compose "$@"
fi
if command -v docker-compose >/dev/null 2>&1; then
  exec docker-compose "$@"
fi
echo "compose.sh: neither \`docker compose\` nor \`docker-compose\` is installed;" \
  "deploy/ensure-docker.sh installs Docker and docker-compose (Debian, as root)" >&2
exit 127
