"""The gateway as a real process on a free port, and a stand-in publisher for app tests.

`start_gateway` makes an admin key in the test's key store (STATE_DIR), gives it to the
gateway as AUDIT_API_KEY, and `RunningGateway.client()` sends it; `client_key` makes a
client-role key, `client(key=…)` sends another key, `client(key=None)` none."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from services.gateway.app import create_app
from services.gateway.publisher import JobPublisher
from shared.config import Settings
from tests.support.keys import admin_key, bearer, make_key
from tests.support.ports import free_port
from tests.support.processes import ServiceProcess


@contextmanager
def in_process_gateway(
    publisher: JobPublisher | None, blob_dir: Path, **changes: Any
) -> Iterator[TestClient]:
    """The gateway app in this process (FastAPI's TestClient) with a stand-in publisher (None:
    the real one, to the broker `changes` name), its state beside `blob_dir`, audit
    unreachable (unless `audit_url` is given), and a client that sends the test admin key."""
    settings = replace(
        Settings(),
        blob_dir=blob_dir,
        state_dir=blob_dir.parent / "state",
        **{"audit_url": closed_url(), **changes},
    )
    app = create_app(settings, publisher=publisher)
    headers = bearer(admin_key(settings.state_dir, settings.state_url))
    with TestClient(app, base_url="http://localhost", headers=headers) as client:
        yield client


def closed_url() -> str:
    """An http URL on a loopback port nobody listens on (an unreachable service)."""
    return f"http://127.0.0.1:{free_port()}"


_ADMIN = object()  # client()'s default: the admin key


@dataclass
class RunningGateway:
    url: str
    process: ServiceProcess
    key: str  # an admin key
    state_dir: Path

    def client(self, timeout: float = 30, key: str | object | None = _ADMIN) -> httpx.Client:
        """An HTTP client sending the admin key, or `key` (None: no Authorization at all)."""
        chosen = self.key if key is _ADMIN else key
        headers = bearer(chosen) if isinstance(chosen, str) else {}
        return httpx.Client(base_url=self.url, timeout=timeout, headers=headers)

    def client_key(self, name: str, **limits: Any) -> str:
        """A new client-role key (it sees its own jobs only); `limits` as KeyLimits."""
        return make_key(self.state_dir, name, **limits)


def start_gateway(
    spawn: Callable[..., ServiceProcess],
    settings: Settings,
    *,
    audit_url: str | None = None,
    wait_for_broker: bool = True,
    timeout: float = 30,
    **env: str,
) -> RunningGateway:
    """Start `python -m services.gateway` for the test's namespace and wait for /readyz (and
    /healthz too unless `wait_for_broker` is False). Audit is unreachable unless given."""
    port = free_port()
    key = admin_key(settings.state_dir, settings.state_url)
    env.setdefault("AUDIT_API_KEY", key)
    process = spawn(
        "services.gateway",
        settings_override=settings,
        GATEWAY_HOST="127.0.0.1",
        GATEWAY_PORT=str(port),
        AUDIT_URL=audit_url or closed_url(),
        **env,
    )
    gateway = RunningGateway(f"http://127.0.0.1:{port}", process, key, settings.state_dir)
    paths = ["/readyz", "/healthz"] if wait_for_broker else ["/readyz"]
    for path in paths:
        wait_for_ok(gateway, path, timeout)
    return gateway


def wait_for_ok(gateway: RunningGateway, path: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if gateway.process.proc.poll() is not None:
            raise AssertionError(f"the gateway exited:\n{gateway.process.tail()}")
        try:
            response = httpx.get(gateway.url + path, timeout=2)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text}"
        except httpx.HTTPError as e:
            last = repr(e)
        time.sleep(0.05)
    raise AssertionError(f"{path} not 200 within {timeout}s ({last}):\n{gateway.process.tail()}")
