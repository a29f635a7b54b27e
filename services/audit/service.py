"""Putting the audit service together: the consumer on the main thread (it owns the AMQP
connection and the writer side of the read model), the read API on a thread of its own."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import cast

import uvicorn
from fastapi import FastAPI

from services.audit.api import create_app
from services.audit.checkpointing import Checkpointer
from services.audit.console.routes import Console
from services.audit.consumer import AuditConsumer
from services.audit.health import WriteHealth
from services.audit.lock import AuditDirBusy, DirLock
from services.audit.metrics import AuditMetrics
from services.audit.model import ReadModelReader, open_queries
from services.audit.recorder import Recorder
from services.audit.segments import LogCorrupt
from shared.auth import WithServiceKey, warn_if_disabled
from shared.blobs import BlobStore, open_blob_store
from shared.config import Settings
from shared.errors import BlobError, ConfigError, StateError
from shared.events import instance_name
from shared.exit_codes import EXIT_CONFIG
from shared.heap import settle_heap
from shared.http_guard import GuardPolicy
from shared.live import Changes
from shared.log import get_logger
from shared.state import ApiKeyStore, open_api_keys

log = get_logger(__name__)
_API_START_TIMEOUT_S = 15.0


class ApiThread:
    """uvicorn on a socket bound here, so a taken port fails at start with a clear error."""

    def __init__(
        self, app: FastAPI, host: str, port: int, on_stop: Callable[[], None] = lambda: None
    ) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=5
        )
        self.server = uvicorn.Server(config)
        self.on_stop = on_stop
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name="audit-api", daemon=True
        )

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + _API_START_TIMEOUT_S
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the read API did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.on_stop()  # the console's live streams end, or uvicorn would wait for them
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def run(settings: Settings) -> int:
    try:
        lock = DirLock(settings.audit_dir)
    except AuditDirBusy as e:
        log.error("audit_dir_busy", error=str(e))
        return 1
    try:
        return _run_locked(settings)
    finally:
        lock.release()


def _run_locked(settings: Settings) -> int:
    try:
        recorder = Recorder.open(settings)
    except LogCorrupt as e:
        log.error("audit_log_corrupt", error=str(e))
        return 1
    except StateError as e:  # the read model in PostgreSQL (STATE_URL) cannot be reached
        log.error("read_model_unavailable", error=str(e))
        return EXIT_CONFIG
    try:
        checkpointer = Checkpointer.open(settings, recorder.audit_log)
        checkpointer.start()
    except StateError as e:
        log.error("checkpoints_unavailable", error=str(e))
        recorder.close()
        return EXIT_CONFIG
    except LogCorrupt as e:
        log.error("audit_log_disagrees_with_checkpoints", error=str(e))
        checkpointer.store.close()
        recorder.close()
        return 1
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("shutdown_requested", signal=signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # STATE_DIR holds the checkpoints only without STATE_URL; with it, it may not even exist.
    kept_here = [] if settings.state_url else [settings.state_dir]
    health = WriteHealth([recorder.audit_log.directory, *kept_here])
    metrics = AuditMetrics()  # this service's own registry, served on the read API's /metrics
    consumer = AuditConsumer(
        settings,
        recorder,
        instance=instance_name(),
        stopping=stopping,
        health=health,
        metrics=metrics,
    )
    queries: ReadModelReader | None = None
    try:
        keys = None if settings.auth_disabled else _key_store(settings)
        warn_if_disabled(settings.auth_disabled, "audit", keys)
        guard = GuardPolicy.of(settings.allowed_hosts, settings.cors_origins)
        live = Changes()
        recorder.on_recorded = lambda records: live.tell("recorded", records[-1].event["job_id"])
        queries = open_queries(settings)
        app = create_app(
            queries,
            consumer.consuming.is_set,
            health.stalled,
            keys=keys,
            guard=guard,
            metrics=metrics.registry,
            console=Console.of(settings, live, _console_blobs(settings)),
        )
        api = ApiThread(app, settings.audit_host, settings.audit_port, on_stop=live.close)
        api.start()
    except (OSError, RuntimeError, StateError) as e:
        log.error(
            "api_failed_to_start", host=settings.audit_host, port=settings.audit_port, error=str(e)
        )
        _close(checkpointer)
        if queries is not None:
            queries.close()
        recorder.close()
        return 1
    log.info(
        "audit_ready",
        port=settings.audit_port,
        audit_dir=str(settings.audit_dir),
        head_seq=recorder.audit_log.head_seq,
    )
    settle_heap()  # the read model replayed, the API built: out of the collector's sight
    try:
        consumer.run()
    finally:
        api.stop()
        queries.close()
        _close(checkpointer)
        recorder.close()
    log.info("audit_stopped", head_seq=recorder.audit_log.head_seq)
    return 0


def _console_blobs(settings: Settings) -> BlobStore | None:
    """The blob store, read by the console for output previews and downloads; without it
    the console lists outputs by name, and the audit runs all the same."""
    try:
        return open_blob_store(settings)
    except (ConfigError, BlobError, OSError) as e:
        log.warning("console_without_blob_store", error=str(e))
        return None


def _close(checkpointer: Checkpointer) -> None:
    try:
        checkpointer.close()
    except StateError as e:
        log.error("shutdown_checkpoint_failed", error=str(e))


def _key_store(settings: Settings) -> ApiKeyStore:
    """The API keys, and the gateway's shared AUDIT_API_KEY when one is set here too."""
    store = open_api_keys(settings)
    if settings.audit_api_key:
        return cast(ApiKeyStore, WithServiceKey(store, settings.audit_api_key, "gateway-reader"))
    return store
