#!/usr/bin/env bash
# Make sure the local PostgreSQL the state tests use (STATE_URL) answers on 127.0.0.1:5432;
# start the installed cluster when it is down.
set -euo pipefail
host="${PGHOST_TEST:-127.0.0.1}"
port="${PGPORT_TEST:-5432}"

ready() { pg_isready -q -h "$host" -p "$port" -t 2 >/dev/null 2>&1; }

if ! command -v pg_isready >/dev/null 2>&1; then
    echo "PostgreSQL is not installed (no pg_isready): apt-get install postgresql, then try again." >&2
    exit 1
fi
if ready; then
    exit 0
fi
echo "starting PostgreSQL…" >&2
if command -v pg_ctlcluster >/dev/null 2>&1 && pg_lsclusters -h 2>/dev/null | grep -q .; then
    read -r version cluster _ < <(pg_lsclusters -h | head -n 1)
    pg_ctlcluster "$version" "$cluster" start >/dev/null 2>&1 || true
fi
ready || service postgresql start >/dev/null 2>&1 || true
for _ in $(seq 1 30); do
    if ready; then
        exit 0
    fi
    sleep 1
done
echo "PostgreSQL does not answer on $host:$port: start it (pg_ctlcluster <version> main start)," \
    "with trust auth for user postgres on 127.0.0.1, or see /var/log/postgresql/." >&2
exit 1
