"""Free loopback ports for the services a test starts."""

from __future__ import annotations

import random
import socket

# Below Linux's ephemeral range (32768-60999): a port the OS hands out for a bind to port 0 is
# also one it may give an outgoing connection's local end, and a service that connects to
# the broker before it listens (the gateway's publishers) could take its own port that way.
_LOW, _HIGH = 20000, 32767


def free_port() -> int:
    """A TCP port nobody listens on right now, outside the ephemeral range."""
    for _ in range(200):
        port = random.randint(_LOW, _HIGH)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {_LOW}-{_HIGH}")
