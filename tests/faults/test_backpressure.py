"""Bounded task queues (TASK_QUEUE_MAX_LENGTH): when one is full the broker nacks new jobs
(reject-publish), the gateway answers 503 and keeps nothing, a worker retries a follow-up
later, and no job already queued disappears (the default drop-head would lose the oldest)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from PIL import Image

from shared.blobs import FolderBlobStore, input_key
from shared.config import Settings
from shared.messages import Job
from tests.conftest import SpawnFn
from tests.support.broker import TestBroker
from tests.support.gateway import start_gateway

MAX_LENGTH = 2


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Long enough back-off steps for the test to make room between two attempts.
    return replace(settings, task_queue_max_length=MAX_LENGTH, retry_delays_ms=(1500, 1500))


def render_body(n: int) -> dict[str, object]:
    return {"template": "document", "data": {"blocks": [f"job {n}"]}}


def submit(http: httpx.Client, n: int) -> httpx.Response:
    return http.post("/jobs/render", json=render_body(n))


def test_a_full_queue_refuses_new_jobs_and_keeps_the_ones_it_holds(
    spawn: SpawnFn, broker: TestBroker, settings: Settings
) -> None:
    gateway = start_gateway(spawn, settings)
    queue = broker.names.task_queue("render")
    with gateway.client() as http:
        # Quorum queues check the limit before they enqueue: one job may go over it.
        answers = [submit(http, n) for n in range(MAX_LENGTH + 2)]
        accepted = [a.json()["id"] for a in answers if a.status_code == 202]
        refused = answers[-1]

        assert len(accepted) in (MAX_LENGTH, MAX_LENGTH + 1)
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"]
        assert "queue is full" in refused.json()["detail"]
        # Still exactly the jobs that were accepted, oldest first: nothing was dropped.
        queued = [Job.model_validate_json(body).id for _, body in broker.drain(queue)]
        assert queued == accepted

        # Room again: the gateway takes jobs at once, on the same connections.
        assert submit(http, 100).status_code == 202


def test_a_follow_up_refused_by_a_full_queue_is_published_again_later(
    spawn: SpawnFn, broker: TestBroker, settings: Settings, tmp_path: Path
) -> None:
    events = broker.events()
    for n in range(MAX_LENGTH + 1):  # full, with the one job a quorum queue takes over
        broker.publish_job(Job(type="render", params=render_body(n)))
    resizer = spawn("services.resizer")
    resizer.wait_logged("consuming")
    job = Job(
        type="resize",
        params={"width": 64},
        then={"type": "render", "params": {"template": "document", "title": "thumb"}},
    )
    key = input_key(job.id, "photo.png")
    with FolderBlobStore(settings.blob_dir).open_write(key) as f:
        Image.new("RGB", (640, 480), "teal").save(f, "PNG")
    broker.publish_job(job.model_copy(update={"inputs": [key]}))

    (retrying,) = events.wait_for(job.id, "job.retrying")
    assert retrying["error"]["kind"] == "publish_refused"
    assert "render" in retrying["error"]["message"]  # names the refused follow-up
    render_queue = broker.names.task_queue("render")
    assert len(broker.drain(render_queue)) == MAX_LENGTH + 1  # make room

    events.wait_for(job.id, "job.succeeded", timeout=30)
    follow_up = job.follow_up([])
    assert follow_up is not None
    broker.wait_until(lambda: broker.depth(render_queue) == 1, 10, "the follow-up queued")
    ((_, body),) = broker.drain(render_queue)
    assert Job.model_validate_json(body).id == follow_up.id
    # The image was resized once: the second attempt found its outputs and only published.
    assert len(resizer.logged("job_already_done_skipping_handler")) == 1
