"""Fixtures shared by every tier. A missing RabbitMQ fails the run loudly; it never skips."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from shared.blobs import BlobStore, open_blob_store
from shared.config import Settings
from tests.support.broker import (
    AMQP_URL,
    NAMESPACES_MADE,
    TestBroker,
    broker_reachable,
    delete_leftovers,
    leftovers,
    unique_namespace,
)
from tests.support.postgres import PostgresUnavailable, fresh_database
from tests.support.processes import ServiceProcess, Spawner
from tests.support.s3 import S3Server


@pytest.fixture(autouse=True)
def _own_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """HOME of the test's own: the CLI and `jobsuite keys local` read and write the key file
    under ~/.config/jobsuite, which must never be the real one (processes inherit it)."""
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.delenv("JOBSUITE_API_KEY", raising=False)


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[str]:
    """The local broker; at the session's end, none of its namespaces may be left on it (a
    retry queue left holding a message once piled up in the broker run after run)."""
    if not broker_reachable(AMQP_URL):
        pytest.fail(
            f"RabbitMQ is not reachable at {AMQP_URL}: start it (rabbitmq-server -detached)",
            pytrace=False,
        )
    yield AMQP_URL
    queues, exchanges = leftovers(NAMESPACES_MADE)
    if queues or exchanges:
        delete_leftovers(queues, exchanges)
        pytest.fail(f"tests left queues {queues} and exchanges {exchanges} on the broker")


@pytest.fixture
def settings(rabbitmq: str, tmp_path: Path) -> Settings:
    """Settings of a fresh namespace, with short back-off steps so retries run quickly."""
    return Settings(
        amqp_url=rabbitmq,
        namespace=unique_namespace(),
        blob_dir=tmp_path / "blobs",
        state_dir=tmp_path / "state",
        retry_delays_ms=(200, 400),
        max_deliveries=3,
        amqp_heartbeat=10,
        log_format="json",
    )


@pytest.fixture
def broker(settings: Settings) -> Iterator[TestBroker]:
    b = TestBroker(settings)
    b.declare()
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database of this test's own (dropped afterwards); the test fails
    when PostgreSQL does not answer."""
    try:
        with fresh_database() as url:
            yield url
    except PostgresUnavailable as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(params=["sqlite", "postgres"])
def state_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings of a fresh state store, once per backend: SQLite files under STATE_DIR, or
    a fresh PostgreSQL database in STATE_URL (no broker needed)."""
    settings = Settings(state_dir=tmp_path / "state", audit_dir=tmp_path / "audit")
    if request.param == "postgres":
        return replace(settings, state_url=request.getfixturevalue("postgres_url"))
    return settings


SpawnFn = Callable[..., ServiceProcess]


@pytest.fixture
def spawn(settings: Settings, tmp_path: Path, broker: TestBroker) -> Iterator[SpawnFn]:
    """Start services as processes of this test's namespace; all are stopped afterwards.

    It depends on `broker` so the processes stop before the namespace is deleted: services
    re-declaring queues while they are being deleted once wedged RabbitMQ 3.10."""
    spawner = Spawner(settings, tmp_path)
    try:
        yield spawner
    finally:
        spawner.stop_all()
        broker.retry_delays |= spawner.retry_delays


def with_settings(settings: Settings, **changes: object) -> Settings:
    return replace(settings, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One moto S3 server process for the session (tests/support/s3.py); each test makes a
    bucket of its own with `s3_server.bucket()`."""
    server = S3Server(tmp_path_factory.mktemp("s3") / "moto.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["folder", "s3"])
def any_blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """Each implementation of the BlobStore contract in turn, as `open_blob_store` opens it:
    the folder, and a bucket of its own on the S3 server."""
    if request.param == "folder":
        return open_blob_store(Settings(blob_dir=tmp_path / "blobs"))
    server: S3Server = request.getfixturevalue("s3_server")
    return open_blob_store(server.settings(Settings(), server.bucket()))
