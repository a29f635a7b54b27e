"""Trust, item 7 and the full-disk part of item 10, against the real services.

Links: a symbolic link planted in the blob store (a file, `inputs/<id>`, `outputs/<id>`, a
manifest, an output) is never followed. The worker that meets one fails the job saying "is a
symbolic link" and nothing outside the store is read, mailed or written; the gateway answers
404 for a manifest or an output that is a link. Each case ends with a good job that succeeds.

Full disks: an upload the store cannot take is a 503 with Retry-After naming the cause and
`/readyz` says not ready; a job confirmed by the broker is a 202 even when the gateway cannot
record it; a worker that meets ENOSPC waits for room past its ordinary retry budget, then
succeeds. A real full disk is a small tmpfs (root only); otherwise a read-only folder.
"""

from __future__ import annotations

import base64
import errno
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.blobs import FolderBlobStore, input_key, output_key
from shared.config import Settings
from shared.messages import Job
from tests.security.conftest import GOOD_RECIPIENT, Suite, small_png
from tests.support.broker import EventWatcher, TestBroker, unique_namespace
from tests.support.full_disk import fill, full_folder, make_room, needs_mount, tmpfs
from tests.support.gateway import RunningGateway, start_gateway
from tests.support.processes import Spawner

LINK = "is a symbolic link"
SECRET = b"root:$6$not-for-mail:19000:0:99999:7:::\n"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the blob store, with a file standing for /etc/shadow."""
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "shadow").write_bytes(SECRET)
    return folder


@pytest.fixture
def planted(suite: Suite) -> Iterator[Suite]:
    """The session's suite; the links a case plants are removed after it."""
    yield suite
    for path in list(suite.settings.blob_dir.rglob("*")):
        if path.is_symlink():
            path.unlink()


def untouched(outside: Path) -> bool:
    return [p.name for p in outside.iterdir()] == ["shadow"] and (
        outside / "shadow"
    ).read_bytes() == SECRET


def mail(**params: object) -> Job:
    base = {"to": [GOOD_RECIPIENT], "subject": "your files", "text": "attached"}
    return Job(type="mail", params={**base, **params})  # type: ignore[arg-type]


def no_secret_mailed(suite: Suite) -> bool:
    """Neither the secret nor its base64 (as an attachment) is in any mail the sink holds."""
    encoded = base64.b64encode(SECRET).rstrip(b"=")
    for message in suite.sink.maildir_files():
        raw = message.read_bytes()
        if b"not-for-mail" in raw or encoded in raw:
            return False
    return True


# --- links ------------------------------------------------------------------------------


def test_a_linked_input_file_is_not_mailed(
    planted: Suite, events: EventWatcher, outside: Path
) -> None:
    suite = planted
    job = mail()
    folder = suite.settings.blob_dir / "inputs" / job.id
    folder.mkdir(parents=True)
    (folder / "shadow.txt").symlink_to(outside / "shadow")
    job = job.model_copy(update={"inputs": [input_key(job.id, "shadow.txt")]})
    failed = suite.publish_with_good_job(events, job)
    assert failed["event"] == "job.failed" and LINK in failed["error"]["message"]
    assert no_secret_mailed(suite) and untouched(outside)
    suite.check_after_case()


def test_a_linked_input_folder_is_not_entered(
    planted: Suite, events: EventWatcher, outside: Path
) -> None:
    suite = planted
    job = mail()
    (suite.settings.blob_dir / "inputs").mkdir(parents=True, exist_ok=True)
    (suite.settings.blob_dir / "inputs" / job.id).symlink_to(outside)
    job = job.model_copy(update={"inputs": [input_key(job.id, "shadow")]})
    failed = suite.publish_with_good_job(events, job)
    assert failed["event"] == "job.failed"
    assert f"'inputs/{job.id}' in the blob store {LINK}" in failed["error"]["message"]
    assert no_secret_mailed(suite) and untouched(outside)
    suite.check_after_case()


def test_an_attachment_whose_manifest_lists_a_link_is_not_mailed(
    planted: Suite, events: EventWatcher, outside: Path
) -> None:
    suite = planted
    earlier = Job(type="resize").id
    store = suite.blobs
    folder = suite.settings.blob_dir / "outputs" / earlier
    folder.mkdir(parents=True)
    (folder / "photo.jpg").symlink_to(outside / "shadow")
    store.write_manifest(earlier, [output_key(earlier, "photo.jpg")])
    failed = suite.publish_with_good_job(events, mail(attachments=[earlier]))
    assert failed["event"] == "job.failed" and LINK in failed["error"]["message"]
    assert no_secret_mailed(suite) and untouched(outside)
    suite.check_after_case()


def test_a_linked_output_folder_takes_no_resize_output(
    planted: Suite, events: EventWatcher, outside: Path
) -> None:
    suite = planted
    job = suite.job_with_input("resize", {"width": 16}, small_png(), "in.png")
    (suite.settings.blob_dir / "outputs").mkdir(parents=True, exist_ok=True)
    (suite.settings.blob_dir / "outputs" / job.id).symlink_to(outside)
    failed = suite.publish_with_good_job(events, job)
    assert failed["event"] == "job.failed"
    assert failed["error"]["kind"] == "blob_link"
    assert f"'outputs/{job.id}' in the blob store {LINK}" in failed["error"]["message"]
    assert len(events.of(job.id, "job.retrying")) == 0  # dies at once, not after retries
    assert untouched(outside)
    suite.check_after_case()


def test_the_gateway_serves_no_manifest_or_output_that_is_a_link(
    planted: Suite, outside: Path
) -> None:
    suite = planted
    linked_manifest, linked_output = Job(type="resize").id, Job(type="resize").id
    blob_dir = suite.settings.blob_dir
    (blob_dir / "outputs" / linked_manifest).mkdir(parents=True)
    (blob_dir / "outputs" / linked_manifest / "manifest.json").symlink_to(outside / "shadow")
    (blob_dir / "outputs" / linked_output).mkdir(parents=True)
    (blob_dir / "outputs" / linked_output / "a.jpg").symlink_to(outside / "shadow")
    suite.blobs.write_manifest(linked_output, [output_key(linked_output, "a.jpg")])
    for url in (
        f"/jobs/{linked_manifest}/result",
        f"/jobs/{linked_output}/result",
        f"/jobs/{linked_output}/result/a.jpg",
    ):
        response = suite.http.get(url)
        assert response.status_code == 404, (url, response.text)
        assert LINK in response.json()["detail"] and b"not-for-mail" not in response.content
    assert suite.http.get("/healthz").status_code == 200
    suite.check_after_case()


# --- full disks, and a store whose `inputs` is itself a link -------------------------------


@dataclass
class Services:
    settings: Settings
    broker: TestBroker
    spawn: Spawner
    gateway: RunningGateway


@pytest.fixture
def own(rabbitmq: str, tmp_path: Path) -> Iterator[Services]:
    """A gateway of a namespace of its own (its folders are made full or read-only here)."""
    settings = Settings(
        amqp_url=rabbitmq,
        namespace=unique_namespace("full"),
        blob_dir=tmp_path / "blobs",
        state_dir=tmp_path / "state",
        retry_delays_ms=(100, 200),
        log_format="json",
    )
    broker = TestBroker(settings)
    broker.declare()
    (tmp_path / "logs").mkdir()
    spawn = Spawner(settings, tmp_path / "logs")
    try:
        yield Services(settings, broker, spawn, start_gateway(spawn, settings))
    finally:
        spawn.stop_all()
        broker.close()


def test_an_upload_to_a_full_store_is_a_503_naming_the_cause_and_readyz_says_so(
    own: Services,
) -> None:
    http = own.gateway.client()
    with full_folder(own.settings.blob_dir) as refused:
        response = http.post(
            "/jobs/resize", files={"file": ("a.png", small_png())}, data={"width": "8"}
        )
        assert response.status_code == 503, response.text
        assert int(response.headers["Retry-After"]) > 0
        assert errno.errorcode[refused] in response.json()["detail"]
        own.broker.wait_until(
            lambda: http.get("/readyz").status_code == 503, 5, "/readyz to say not ready"
        )
        assert http.get("/healthz").status_code == 200  # the gateway itself is fine
    own.broker.wait_until(lambda: http.get("/readyz").status_code == 200, 5, "ready again")
    accepted = http.post(
        "/jobs/resize", files={"file": ("a.png", small_png())}, data={"width": "8"}
    )
    assert accepted.status_code == 202


@needs_mount
def test_a_mail_the_broker_confirmed_is_a_202_though_the_state_disk_is_full(
    rabbitmq: str, tmp_path: Path
) -> None:
    # The reproduction: no Idempotency-Key, the accepted job not recordable: it was a 500.
    settings = Settings(
        amqp_url=rabbitmq,
        namespace=unique_namespace("full"),
        blob_dir=tmp_path / "blobs",
        state_dir=tmp_path / "state",
        log_format="json",
    )
    broker = TestBroker(settings)
    broker.declare()
    (tmp_path / "logs").mkdir()
    spawn = Spawner(settings, tmp_path / "logs")
    try:
        with tmpfs(settings.state_dir, size="2m"):
            gateway = start_gateway(spawn, settings)
            http = gateway.client()
            fill(settings.state_dir)
            events = broker.events()
            body = {"to": [GOOD_RECIPIENT], "subject": "once", "text": "only once"}
            response = http.post("/jobs/mail", json=body)
            assert response.status_code == 202, response.text
            job_id = response.json()["id"]
            events.wait_for(job_id, "job.submitted")
            assert broker.depth(broker.names.task_queue("mail")) == 1
            gateway.process.wait_logged("accepted_job_not_recorded")
            assert http.get("/healthz").status_code == 200
    finally:
        spawn.stop_all()
        broker.close()


@needs_mount
def test_a_worker_on_a_full_disk_waits_past_its_retry_budget_then_succeeds(
    own: Services,
) -> None:
    blob_dir = own.settings.blob_dir
    store = FolderBlobStore(blob_dir)
    job = Job(type="resize", params={"width": 16})  # type: ignore[arg-type]
    job = job.model_copy(
        update={"inputs": [store.write_bytes(input_key(job.id, "a.png"), small_png())]}
    )
    events = own.broker.events()
    with tmpfs(blob_dir / "outputs", size="256k"):
        fill(blob_dir / "outputs")
        resizer = own.spawn("services.resizer")
        resizer.wait_logged("consuming")
        own.broker.publish_job(job)
        # Three attempts is the budget (two back-off steps): a full disk spends none of it.
        waits = events.wait_for(job.id, "job.retrying", count=5, timeout=30)
        assert {e["error"]["kind"] for e in waits} == {"disk_full"}
        assert {e["attempt"] for e in waits} == {1}
        assert (
            "ENOSPC" in waits[0]["error"]["message"] or "No space" in waits[0]["error"]["message"]
        )
        assert events.of(job.id, "job.failed") == []
        make_room(blob_dir / "outputs")
        events.wait_for(job.id, "job.succeeded", timeout=30)
        assert store.read_manifest(job.id) is not None
    assert resizer.proc.poll() is None


def test_with_inputs_itself_a_link_nothing_is_stored_or_read_outside(
    own: Services, outside: Path, tmp_path: Path
) -> None:
    http = own.gateway.client()
    job = Job(type="resize", params={"width": 16})  # type: ignore[arg-type]
    (outside / job.id).mkdir()
    (outside / job.id / "in.png").write_bytes(small_png())  # reachable only through the link
    job = job.model_copy(update={"inputs": [input_key(job.id, "in.png")]})
    (own.settings.blob_dir / "inputs").symlink_to(outside)
    upload = http.post("/jobs/resize", files={"file": ("a.png", small_png())}, data={"width": "8"})
    assert upload.status_code == 503, upload.text
    assert upload.headers["Retry-After"] and LINK in upload.json()["detail"]
    assert sorted(p.name for p in outside.iterdir()) == sorted([job.id, "shadow"])
    events = own.broker.events()
    resizer = own.spawn("services.resizer")
    resizer.wait_logged("consuming")
    own.broker.publish_job(job)
    failed = events.wait_for(job.id, "job.failed")[0]
    assert f"'inputs' in the blob store {LINK}" in failed["error"]["message"]
    assert events.of(job.id, "job.retrying") == []
    assert not (own.settings.blob_dir / "outputs" / job.id).exists()
    assert http.get("/healthz").status_code == 200 and resizer.proc.poll() is None
