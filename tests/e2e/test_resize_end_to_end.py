"""A resize job published by a plain pika script in the docs/design.md format, done by the real
resizer service: the outputs are checked pixel by pixel, the events on the wire."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pika
from PIL import Image

from shared.config import Settings
from tests.conftest import SpawnFn
from tests.support.broker import TestBroker


def publish_like_a_user(settings: Settings, photo: Path, params: dict, then: dict | None) -> str:
    """What the README tells a user to do before the gateway exists, with pika alone."""
    job_id = str(uuid.uuid4())
    key = f"inputs/{job_id}/{photo.name}"
    target = settings.blob_dir / key
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(photo.read_bytes())
    job = {
        "v": 1,
        "id": job_id,
        "type": "resize",
        "params": params,
        "inputs": [key],
        "then": then,
        "submitted_at": datetime.now(UTC).isoformat(),
        "attempt": 1,
    }
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_publish(
        exchange=f"{settings.namespace}.jobs",
        routing_key="resize",
        body=json.dumps(job),
        properties=pika.BasicProperties(
            content_type="application/json",
            delivery_mode=2,
            message_id=job_id,
            type="resize",
        ),
        mandatory=True,
    )
    connection.close()
    return job_id


def make_photo(path: Path, size: tuple[int, int]) -> Path:
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    image.save(path, "JPEG", quality=90)
    return path


def test_a_resize_job_from_a_plain_pika_script_produces_its_outputs_and_events(
    spawn: SpawnFn, broker: TestBroker, settings: Settings, tmp_path: Path
) -> None:
    events = broker.events()
    resizer = spawn("services.resizer")
    resizer.wait_logged("consuming")
    photo = make_photo(tmp_path / "photo.jpg", (1600, 1200))

    job_id = publish_like_a_user(settings, photo, {"width": 800}, None)
    started = events.wait_for(job_id, "job.started")[0]
    done = events.wait_for(job_id, "job.succeeded")[0]

    assert started["service"] == done["service"] == "resizer"
    assert done["duration_ms"] > 0
    (key,) = done["outputs"]
    with Image.open(settings.blob_dir / key) as out:
        assert out.format == "JPEG"
        assert out.size == (800, 600)


def test_a_thumbnail_set_with_a_follow_up_job(
    spawn: SpawnFn, broker: TestBroker, settings: Settings, tmp_path: Path
) -> None:
    events = broker.events()
    resizer = spawn("services.resizer")
    resizer.wait_logged("consuming")
    photo = make_photo(tmp_path / "photo.jpg", (1200, 800))
    params = {"sizes": [{"width": 300}, {"width": 100, "height": 100}], "fit": "cover"}
    # A follow-up the gateway would take: workers refuse one it would not, before they run.
    then = {
        "type": "mail",
        "params": {"to": ["ann@example.org"], "subject": "your thumbnails", "text": "attached"},
    }

    job_id = publish_like_a_user(settings, photo, {**params, "format": "png"}, then)
    done = events.wait_for(job_id, "job.succeeded")[0]

    sizes = []
    for key in done["outputs"]:
        with Image.open(settings.blob_dir / key) as out:
            assert out.format == "PNG"
            sizes.append(out.size)
    assert sizes == [(300, 200), (100, 100)]
    mail_queue = broker.names.task_queue("mail")
    broker.wait_until(lambda: broker.depth(mail_queue) == 1, 5, "the follow-up mail job")
    follow = json.loads(broker.drain(mail_queue)[0][1])
    assert follow["inputs"] == done["outputs"]
    assert follow["parent_id"] == job_id


def test_a_corrupt_image_fails_clearly_and_the_resizer_goes_on(
    spawn: SpawnFn, broker: TestBroker, settings: Settings, tmp_path: Path
) -> None:
    events = broker.events()
    resizer = spawn("services.resizer")
    resizer.wait_logged("consuming")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")

    bad_id = publish_like_a_user(settings, bad, {"width": 100}, None)
    failed = events.wait_for(bad_id, "job.failed")[0]
    assert (
        "not a supported image" in failed["error"]["message"]
        or "corrupt" in failed["error"]["message"]
    )
    assert not events.of(bad_id, "job.retrying")
    broker.wait_until(lambda: broker.depth(broker.names.dead_queue) == 1, 5, "one dead letter")

    good_id = publish_like_a_user(
        settings, make_photo(tmp_path / "ok.jpg", (50, 40)), {"width": 25}, None
    )
    events.wait_for(good_id, "job.succeeded")
