from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from shared.errors import DecodeError
from shared.ids import follow_up_id, is_job_id, new_id
from shared.jobtypes.models import parse_params
from shared.jobtypes.resize import ResizeParams
from shared.messages import (
    Event,
    Job,
    decode_event,
    decode_job,
    encode,
)


def test_new_ids_are_random_version_4_uuids_written_as_uuid_writes_them() -> None:
    ids = [new_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for made in ids:
        parsed = uuid.UUID(made)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == made and is_job_id(made)
    # Every bit outside the version and variant is random: each is seen as 0 and as 1.
    seen_set = seen_clear = 0
    for made in ids:
        value = uuid.UUID(made).int
        seen_set |= value
        seen_clear |= ~value
    fixed = (0xF << 76) | (0x3 << 62)  # the version nibble, the variant's two bits
    everything = (1 << 128) - 1
    assert seen_set & seen_clear & everything == everything & ~fixed


def test_a_job_round_trips_through_its_wire_format() -> None:
    job = Job(type="resize", params={"width": 800}, inputs=["inputs/x/a.jpg"])
    wire = json.loads(encode(job))
    assert wire["v"] == 1 and wire["attempt"] == 1 and wire["type"] == "resize"
    assert "then" not in wire  # None fields stay off the wire
    assert decode_job(encode(job)) == job


def test_the_documented_job_format_written_by_hand_decodes() -> None:
    body = json.dumps(
        {
            "v": 1,
            "id": "0b9f3f0e-4a35-4a1b-9d51-2a6b5b8e0c11",
            "type": "resize",
            "params": {"width": 800},
            "inputs": ["inputs/0b9f3f0e-4a35-4a1b-9d51-2a6b5b8e0c11/photo.jpg"],
            "then": None,
            "submitted_at": "2026-11-26T12:00:00Z",
            "attempt": 1,
        }
    ).encode()
    assert decode_job(body).params == {"width": 800}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"\xff", "Invalid JSON"),
        (b"[]", "should be an object"),
        (b'{"v": 1, "type": "resize"}', "id: Field required"),
        (b'{"id": "0b9f3f0e-4a35-4a1b-9d51-2a6b5b8e0c11", "type": "resize"}', "v: Field required"),
        (b'{"v": 2, "id": "0b9f3f0e-4a35-4a1b-9d51-2a6b5b8e0c11", "type": "resize"}', "v:"),
        (b'{"v": 1, "id": "../etc", "type": "resize"}', "id:"),
        (b'{"v": 1, "id": "0b9f3f0e-4a35-4a1b-9d51-2a6b5b8e0c11", "type": "fax"}', "type:"),
        (
            b'{"v": 1, "id": "0b9f3f0e-4a35-4a1b-9d51-2a6b5b8e0c11", "type": "mail", "x": 1}',
            "x: Extra inputs",
        ),
    ],
)
def test_an_invalid_job_is_a_decode_error_naming_the_field(body: bytes, says: str) -> None:
    with pytest.raises(DecodeError, match=says):
        decode_job(body)


def test_the_follow_up_takes_the_outputs_and_a_stable_id() -> None:
    job = Job(type="resize", then={"type": "mail", "params": {"to": ["a@example.com"]}})
    follow = job.follow_up(["outputs/x/800x600.jpg"])
    assert follow is not None
    assert follow.inputs == ["outputs/x/800x600.jpg"]
    assert follow.parent_id == job.id
    # A redelivered parent publishes the same follow-up, not a second one.
    assert follow.id == follow_up_id(job.id) == job.follow_up([]).id  # type: ignore[union-attr]
    assert Job(type="resize").follow_up([]) is None


def test_next_attempt_counts_up_and_keeps_the_identity() -> None:
    job = Job(type="render")
    again = job.next_attempt()
    assert (again.id, again.attempt) == (job.id, 2)


def test_an_event_round_trips() -> None:
    event = Event(
        event="job.failed",
        job_id="j",
        type="resize",
        service="resizer",
        instance="host:1",
        error={"kind": "permanent", "message": "bad"},
    )
    assert decode_event(encode(event)) == event
    with pytest.raises(DecodeError):
        decode_event(b'{"event": "job.exploded"}')


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({}, "give width, height or sizes"),
        ({"width": 0}, "width"),
        ({"width": 10, "quality": 0}, "quality"),
        ({"width": 10, "fit": "stretch"}, "fit"),
        ({"width": 10, "sizes": [{"width": 5}]}, "not both"),
        ({"sizes": [{}]}, "give width, height or both"),
        ({"width": 10, "colour": "red"}, "colour"),
    ],
)
def test_bad_resize_params_are_named(params: dict, says: str) -> None:
    with pytest.raises(DecodeError, match=says):
        parse_params(ResizeParams, params)


def test_resize_boxes_cover_single_and_thumbnail_sets() -> None:
    assert [b.width for b in parse_params(ResizeParams, {"width": 8}).boxes()] == [8]
    sizes = {"sizes": [{"width": 64}, {"height": 128}]}
    assert len(parse_params(ResizeParams, sizes).boxes()) == 2


# In a process of its own: the cache lives as long as the process, and one that other tests
# have filled already would keep no more, whatever the models say.
_PARSE_MANY = """
import json, tracemalloc, uuid
from shared.messages import Event, Job, JobRecord, decode_event, decode_job, encode

bodies = []
for _ in range(6000):  # jobs, their events and audit records, every id new, as on a queue
    job = Job(type="resize", params={"width": 160}, inputs=[], trace_id=uuid.uuid4().hex)
    started = Event(
        event="job.started", job_id=job.id, type="resize", service="resizer", instance="r1"
    )
    record = json.dumps({"id": job.id, "type": "resize", "status": "started"}).encode()
    bodies.append((encode(job), encode(started), record))
tracemalloc.start()
before = tracemalloc.get_traced_memory()[0]
for job, event, record in bodies:
    decode_job(job)
    decode_event(event)
    JobRecord.model_validate_json(record)
print(tracemalloc.get_traced_memory()[0] - before)
"""


def test_parsing_messages_keeps_none_of_their_values() -> None:
    """pydantic caches the strings it parses from JSON (16,384 of them, kept for the life of
    the process): a message's values are new every time, so only its keys may go there, or
    every process grows by 1.4 MiB over its first ten thousand jobs."""
    run = subprocess.run(
        [sys.executable, "-c", _PARSE_MANY], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    kept = int(run.stdout)
    assert kept < 100 * 1024, f"{kept // 1024} KiB kept after parsing 18,000 messages"
