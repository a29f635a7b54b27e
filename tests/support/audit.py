"""Helpers for the audit tests: events made to order, the audit service as a process, its API."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pika

from shared.config import Settings
from shared.messages import ErrorInfo, Event, EventName, encode
from tests.support.broker import TestBroker
from tests.support.keys import admin_key, bearer
from tests.support.ports import free_port
from tests.support.processes import ServiceProcess

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def make_event(
    name: EventName,
    job_id: str,
    *,
    attempt: int = 1,
    seconds: float = 0,
    job_type: str = "resize",
    error: tuple[str, str] | None = None,
    **fields: Any,
) -> Event:
    """An event at T0 + `seconds`, as a worker of service `test` would publish it."""
    return Event(
        event=name,
        job_id=job_id,
        type=job_type,
        service="test",
        instance="test:1",
        at=T0 + timedelta(seconds=seconds),
        attempt=attempt,
        error=ErrorInfo(kind=error[0], message=error[1]) if error else None,
        **fields,
    )


def new_job_id() -> str:
    return str(uuid.uuid4())


@dataclass
class AuditService:
    """A running `python -m services.audit` and a client for its read API."""

    process: ServiceProcess
    port: int
    audit_dir: Path
    key: str  # an admin key of its key store

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(self.url + path, params=params, timeout=10, headers=bearer(self.key))

    def job(self, job_id: str) -> dict[str, Any] | None:
        response = self.get(f"/jobs/{job_id}")
        return None if response.status_code == 404 else response.json()

    def wait_for(self, check: Callable[[], bool], what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            if self.process.proc.poll() is not None:
                raise AssertionError(f"the audit service exited:\n{self.process.tail()}")
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    def wait_for_status(self, job_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
        found: dict[str, Any] = {}

        def reached() -> bool:
            found.update(self.job(job_id) or {})
            return found.get("status") == status

        self.wait_for(reached, f"job {job_id} to be {status} (last seen {found})", timeout)
        return found


def audit_env(settings: Settings, audit_dir: Path, port: int, **extra: str) -> dict[str, str]:
    """The environment the audit service (and the CLI) need beyond `service_env`."""
    return {
        "AUDIT_DIR": str(audit_dir),
        "AUDIT_HOST": "127.0.0.1",
        "AUDIT_PORT": str(port),
        "AUDIT_URL": f"http://127.0.0.1:{port}",
        **extra,
    }


def start_audit(
    spawn: Callable[..., ServiceProcess],
    settings: Settings,
    audit_dir: Path,
    port: int | None = None,
    **extra: str,
) -> AuditService:
    port = port or free_port()
    key = admin_key(settings.state_dir)
    process = spawn("services.audit", **audit_env(settings, audit_dir, port, **extra))
    process.wait_logged("consuming")
    return AuditService(process, port, audit_dir, key)


def publish_event(broker: TestBroker, event: Event) -> None:
    """Publish an event on the namespace's fanout, as a service would (confirmed)."""
    props = pika.BasicProperties(
        content_type="application/json",
        delivery_mode=pika.DeliveryMode.Persistent,
        message_id=event.event_id,
        type=event.event,
    )
    broker.channel.basic_publish(broker.names.events_exchange, "", encode(event), props)
