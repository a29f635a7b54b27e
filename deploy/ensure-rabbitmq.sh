#!/usr/bin/env bash
# Make sure the RabbitMQ at AMQP_URL answers; start a local one when it is installed but down.
set -euo pipefail

url="${AMQP_URL:-amqp://guest:guest@localhost:5672/%2F}"
hostport=$(python3 - "$url" <<'PY'
import sys
from urllib.parse import urlparse
u = urlparse(sys.argv[1])
print(f"{u.hostname or 'localhost'} {u.port or 5672}")
PY
)
read -r host port <<<"$hostport"

reachable() {
  python3 -c "import socket,sys; socket.create_connection(('$host', $port), timeout=2).close()" 2>/dev/null
}

if reachable; then
  exit 0
fi
case "$host" in
  localhost|127.*|::1) ;;
  *) echo "RabbitMQ is not reachable at $host:$port (AMQP_URL): start it there, or unset AMQP_URL to use a local one." >&2; exit 1 ;;
esac
if ! command -v rabbitmq-server >/dev/null 2>&1; then
  echo "RabbitMQ is not running on $host:$port and is not installed: apt-get install rabbitmq-server (or docker compose up -d rabbitmq), then try again." >&2
  exit 1
fi
echo "starting RabbitMQ (rabbitmq-server -detached)…" >&2
rabbitmq-server -detached >/dev/null 2>&1 || true
for _ in $(seq 1 90); do
  if reachable && rabbitmqctl -q await_startup >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "RabbitMQ did not come up on $host:$port within 90 s: see /var/log/rabbitmq/." >&2
exit 1
