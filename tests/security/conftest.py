"""One running suite for every hostile-input test: gateway, resizer, renderer, mailer and
mail sink as real processes on the real broker, in a namespace of their own.

Started once per session (the corpus has well over a hundred cases; a suite per case would
take minutes). That is also the point: every case runs against services that have already
swallowed every case before it, and each case ends with a good job that must still succeed.

Two traps run beside the services:
- a fake `gs` first on their PATH, which records its call: Pillow's EPS plugin runs `gs` to
  decode, so a file under it means some service handed untrusted bytes to Ghostscript;
- a file census of the sandbox the services write into, and of /tmp: after each case, a file
  outside the blob store (and the sink's, the shared state's and the logs' own places), or
  any file named after the corpus's traversal token outside the blob store, fails the case.
"""

from __future__ import annotations

import io
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from shared.blobs import FolderBlobStore, input_key
from shared.config import Settings
from shared.messages import Job
from tests.support.broker import EventWatcher, TestBroker, unique_namespace
from tests.support.gateway import RunningGateway, start_gateway
from tests.support.mailsink import MailSink, start_mailsink
from tests.support.processes import ServiceProcess, Spawner

CORPUS = Path(__file__).parent / "corpus"
# Small limits, so cases "just over" them stay small files.
LIMITS = {"MAX_IMAGE_PIXELS": "1000000", "MAX_UPLOAD_BYTES": "65536", "MAX_RECIPIENTS": "50"}
MAX_UPLOAD_BYTES = int(LIMITS["MAX_UPLOAD_BYTES"])
# Every hostile name in corpus/names/ carries it, so a file it created can be found anywhere.
TRAVERSAL_TOKEN = "pwned-jobsuite-corpus"
GOOD_RECIPIENT = "ann@example.org"
# The mail view asks for these, as compose's does (MAILSINK_UI_AUTH); the helpers send them.
SINK_AUTH = ("mailview", "corpus-view-secret")
FAKE_GS = """#!/bin/sh
echo "$@" >> "{log}"
exit 1
"""


def corpus_files(folder: str) -> list[Path]:
    return sorted(p for p in (CORPUS / folder).iterdir() if p.is_file())


def corpus_json(path: Path) -> Any:
    return json.loads(path.read_text())


def small_png() -> bytes:
    buffer = io.BytesIO()
    Image.linear_gradient("L").resize((32, 24)).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class Suite:
    root: Path
    settings: Settings
    broker: TestBroker
    gateway: RunningGateway
    sink: MailSink
    workers: dict[str, ServiceProcess]
    gs_log: Path
    allowed: list[Path]
    http: httpx.Client = field(init=False)
    blobs: FolderBlobStore = field(init=False)
    _baseline: set[Path] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.http = self.gateway.client()
        self.blobs = FolderBlobStore(self.settings.blob_dir)
        self._baseline = self._census()

    # --- jobs ---------------------------------------------------------------------------

    def job_with_input(self, job_type: str, params: dict[str, Any], data: bytes, name: str) -> Job:
        """A job whose one input is already in the blob store (as the gateway would put it)."""
        job = Job(type=job_type, params=params)  # type: ignore[arg-type]
        key = self.blobs.write_bytes(input_key(job.id, name), data)
        return job.model_copy(update={"inputs": [key]})

    def good_job(self, job_type: str) -> Job:
        if job_type == "resize":
            return self.job_with_input("resize", {"width": 16}, small_png(), "good.png")
        if job_type == "render":
            return Job(type="render", params={"template": "document", "data": {"blocks": ["ok"]}})
        params = {"to": [GOOD_RECIPIENT], "subject": "still serving", "text": "ok"}
        return Job(type="mail", params=params)

    def outcome(self, events: EventWatcher, job_id: str, timeout: float = 30) -> dict[str, Any]:
        """The job's terminal event (job.succeeded or job.failed)."""
        terminal = ("job.succeeded", "job.failed")
        self.broker.wait_until(
            lambda: any(e["event"] in terminal for e in events.of(job_id)),
            timeout,
            f"job {job_id} to finish",
        )
        return next(e for e in events.of(job_id) if e["event"] in terminal)

    def failed(self, events: EventWatcher, job_id: str) -> dict[str, Any]:
        event = self.outcome(events, job_id)
        assert event["event"] == "job.failed", event
        return event

    def succeeded(self, events: EventWatcher, job_id: str) -> dict[str, Any]:
        event = self.outcome(events, job_id)
        assert event["event"] == "job.succeeded", event
        return event

    def publish_with_good_job(self, events: EventWatcher, job: Job) -> dict[str, Any]:
        """Publish `job` straight onto its queue, then a good job of the same type; return
        the hostile job's terminal event once the good one has succeeded after it."""
        return self.publish_with_good_jobs(events, [job])[0]

    def publish_with_good_jobs(self, events: EventWatcher, jobs: list[Job]) -> list[dict]:
        """The same for several jobs at once: every one, then a good job per job type."""
        goods = [self.good_job(t) for t in sorted({job.type for job in jobs})]
        for job in [*jobs, *goods]:
            self.broker.publish_job(job)
        outcomes = [self.outcome(events, job.id) for job in jobs]
        for good in goods:
            self.succeeded(events, good.id)
        return outcomes

    # --- the traps ----------------------------------------------------------------------

    def check_after_case(self) -> None:
        """Every service still runs, no Ghostscript ran, no file went astray."""
        for name, proc in {"gateway": self.gateway.process, **self.workers}.items():
            assert proc.proc.poll() is None, f"{name} exited:\n{proc.tail()}"
        assert not self.gs_log.exists(), f"gs was run: {self.gs_log.read_text()}"
        stray = [
            p
            for p in self._census() - self._baseline
            if not any(p.is_relative_to(place) for place in self.allowed)
        ]
        assert stray == [], f"files written outside the blob store: {stray}"
        tokens = [p for p in self.root.rglob(f"*{TRAVERSAL_TOKEN}*") if p.is_file()]
        tokens += list(Path("/tmp").glob(f"*{TRAVERSAL_TOKEN}*"))
        outside = [p for p in tokens if not p.resolve().is_relative_to(self.settings.blob_dir)]
        assert outside == [], f"a hostile name escaped the blob store: {outside}"

    def _census(self) -> set[Path]:
        return {p for p in self.root.rglob("*") if p.is_file()}

    def sink_recipients(self) -> list[str]:
        found: list[str] = []
        for message in self.sink.messages():
            found += message["envelope_to"] + message["to"] + message["cc"]
        return found


def _fake_gs(folder: Path) -> Path:
    folder.mkdir()
    log = folder / "gs-was-called"
    script = folder / "gs"
    script.write_text(FAKE_GS.format(log=log))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return log


def trapped_path(gs_folder: Path) -> str:
    return f"{gs_folder}{os.pathsep}{os.environ.get('PATH', '')}"


@pytest.fixture(scope="session")
def suite(rabbitmq: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    root = tmp_path_factory.mktemp("security")
    settings = Settings(
        amqp_url=rabbitmq,
        namespace=unique_namespace("sec"),
        blob_dir=root / "store" / "blobs",
        state_dir=root / "state",
        retry_delays_ms=(200, 400),
        max_deliveries=3,
        amqp_heartbeat=10,
        log_format="json",
    )
    settings = replace(settings, max_image_pixels=int(LIMITS["MAX_IMAGE_PIXELS"]))
    gs_log = _fake_gs(root / "trap")
    env = {**LIMITS, "PATH": trapped_path(gs_log.parent)}
    logs, mail = root / "logs", root / "mail"
    logs.mkdir()
    broker = TestBroker(settings)
    broker.declare()
    spawn = Spawner(settings, logs)
    try:
        sink = start_mailsink(spawn, mail, chaos_api=True, ui_auth=SINK_AUTH)
        workers = {
            "resizer": spawn("services.resizer", **env),
            "renderer": spawn("services.renderer", **env),
            "mailer": spawn("services.mailer", **sink.env(), **env),
        }
        gateway = start_gateway(spawn, settings, **env)
        for worker in workers.values():
            worker.wait_logged("consuming")
        allowed = [settings.blob_dir, mail, logs, settings.state_dir]
        yield Suite(root, settings, broker, gateway, sink, workers, gs_log, allowed)
    finally:
        spawn.stop_all()
        broker.close()


@pytest.fixture
def events(suite: Suite) -> Iterator[EventWatcher]:
    watcher = suite.broker.events()
    yield watcher
    suite.broker.channel.queue_delete(watcher.queue)  # else every later event is copied to it


@pytest.fixture(autouse=True)
def _no_leftover_token_files() -> None:
    """A token file in /tmp from an earlier, broken run would blame this one."""
    for leftover in Path("/tmp").glob(f"*{TRAVERSAL_TOKEN}*"):
        leftover.unlink()
