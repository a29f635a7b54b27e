#!/bin/bash
# The stand-in postgres image's entrypoint: on an empty PGDATA, initdb with POSTGRES_USER
# as the superuser (password auth from any address), then create POSTGRES_DB; then the server.
set -euo pipefail
bin="$(echo /usr/lib/postgresql/*/bin)"
from_file() {  # POSTGRES_PASSWORD_FILE and the like, as the official image reads them
  local name="$1" file="${1}_FILE"
  if [ -n "${!file:-}" ]; then printf -v "$name" '%s' "$(<"${!file}")"; fi
}
from_file POSTGRES_USER
from_file POSTGRES_PASSWORD
from_file POSTGRES_DB
user="${POSTGRES_USER:-postgres}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  "$bin/initdb" --username="$user" --pwfile="$pwfile" --auth-local=trust \
    --auth-host=scram-sha-256 --encoding=UTF8 -D "$PGDATA" >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  db="${POSTGRES_DB:-$user}"
  if [ "$db" != postgres ]; then
    "$bin/postgres" --single -D "$PGDATA" postgres <<<"CREATE DATABASE \"$db\" OWNER \"$user\";" >/dev/null
  fi
fi
if [ "${1:-}" = postgres ]; then
  shift
  exec "$bin/postgres" -D "$PGDATA" -c listen_addresses='*' "$@"
fi
exec "$@"
