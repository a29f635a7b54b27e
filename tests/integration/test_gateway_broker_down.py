"""A broker the gateway cannot use means 503 with Retry-After and nothing kept; a connection
the broker closes is replaced without the clients noticing. The shared broker is never
stopped: the gateway is pointed at a closed port, its own bindings are removed, or its own
named connection is closed from the broker side."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from shared.config import Settings
from tests.conftest import SpawnFn, with_settings
from tests.support.broker import TestBroker, close_connections_named
from tests.support.gateway import start_gateway, wait_for_ok
from tests.support.ports import free_port


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "olive").save(buf, "PNG")
    return buf.getvalue()


def stored_inputs(settings: Settings) -> list[Path]:
    return (
        [p for p in (settings.blob_dir / "inputs").rglob("*")] if settings.blob_dir.exists() else []
    )


def test_no_broker_is_503_with_retry_after_and_no_orphan_blob(
    spawn: SpawnFn, settings: Settings
) -> None:
    nowhere = with_settings(settings, amqp_url=f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F")
    gateway = start_gateway(spawn, nowhere, wait_for_broker=False)
    with gateway.client() as http:
        health = http.get("/healthz")
        upload = http.post(
            "/jobs/resize", files={"file": ("p.png", png(), "image/png")}, data={"width": "8"}
        )
        keyed = http.post(
            "/jobs/render", json={"template": "document"}, headers={"Idempotency-Key": "k-1"}
        )
    assert health.status_code == 503
    assert "refused" in health.json()["broker"].lower() or health.json()["broker"]
    assert upload.status_code == 503, upload.text
    assert int(upload.headers["retry-after"]) > 0
    assert "nothing was kept" in upload.json()["detail"]
    assert stored_inputs(settings) == []
    assert keyed.status_code == 503  # and the key was released: the retry may use it again


def test_an_unroutable_job_is_503_and_its_upload_is_deleted(
    broker: TestBroker, spawn: SpawnFn, settings: Settings
) -> None:
    gateway = start_gateway(spawn, settings)
    # The gateway declared its bindings when it connected; take the resize one away.
    broker.channel.queue_unbind(
        broker.names.task_queue("resize"), broker.names.jobs_exchange, "resize"
    )
    with gateway.client() as http:
        refused = http.post(
            "/jobs/resize", files={"file": ("p.png", png(), "image/png")}, data={"width": "8"}
        )
        still_fine = http.post("/jobs/render", json={"template": "document"})
    assert refused.status_code == 503, refused.text
    assert "refused" in refused.json()["detail"]
    assert stored_inputs(settings) == []
    assert still_fine.status_code == 202
    assert broker.depth(broker.names.task_queue("render")) == 1


@pytest.mark.parametrize("publishers", [1, 2])  # the default, and with a spare connection
def test_a_connection_closed_by_the_broker_is_replaced(
    broker: TestBroker, spawn: SpawnFn, settings: Settings, publishers: int
) -> None:
    gateway = start_gateway(spawn, settings, GATEWAY_PUBLISHERS=str(publishers))
    with gateway.client() as http:
        assert http.post("/jobs/render", json={"template": "document"}).status_code == 202
        closed = close_connections_named(f"{settings.namespace}.gateway:")
        assert closed == publishers
        gateway.process.wait_logged("publisher_connection_lost")
        wait_for_ok(gateway, "/healthz")
        answers = [
            http.post("/jobs/render", json={"template": "document"}).status_code for _ in range(5)
        ]
    assert answers == [202] * 5
    assert broker.depth(broker.names.task_queue("render")) == 6
