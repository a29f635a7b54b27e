"""Dead letters (a job body plus the broker's x-death headers) read into `job.dead` events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.audit.deadletters import dead_event, read_dead_letter
from shared.messages import Job, encode

DIED = datetime(2025, 1, 1, 12, 0, 5, tzinfo=UTC)


def headers(reason: str, queue: str = "ns.jobs.resize", count: int = 1) -> dict:
    return {
        "x-death": [
            {"count": count, "reason": reason, "queue": queue, "time": DIED, "exchange": "ns.jobs"},
            {"count": 1, "reason": "expired", "queue": "ns.jobs.retry.200", "time": DIED},
        ],
        "x-first-death-reason": "expired",
        "x-first-death-queue": "ns.jobs.retry.200",
    }


def test_a_rejected_job_becomes_a_dead_event_with_the_latest_reason() -> None:
    job = Job(type="resize", params={"width": 1}, attempt=3, parent_id=None)
    body = encode(job)
    dead = read_dead_letter(body, headers("rejected"), job.id, "resize")
    event = dead_event(dead, body, "audit", "host:1")

    assert (dead.reason, dead.queue, dead.first_reason) == ("rejected", "ns.jobs.resize", "expired")
    assert event.event == "job.dead" and event.job_id == job.id and event.type == "resize"
    assert event.attempt == 3
    assert event.error is not None
    assert event.error.kind == "rejected"
    assert event.error.message == "dead-lettered from ns.jobs.resize: rejected"
    assert event.at == max(DIED, job.submitted_at)


def test_delivery_limit_and_expired_reasons_are_kept() -> None:
    job = Job(type="mail")
    for reason in ("delivery_limit", "expired"):
        dead = read_dead_letter(encode(job), headers(reason, count=2), job.id, None)
        assert dead.reason == reason
        assert dead.summary() == f"dead-lettered from ns.jobs.resize: {reason} (2x)"


def test_the_same_dead_letter_twice_gets_the_same_event_id() -> None:
    job = Job(type="resize")
    body = encode(job)
    first = dead_event(read_dead_letter(body, headers("rejected"), job.id, None), body, "a", "1")
    again = dead_event(read_dead_letter(body, headers("rejected"), job.id, None), body, "a", "2")
    later = {**headers("rejected"), "x-death": [{**headers("rejected")["x-death"][0], "count": 2}]}
    other = dead_event(read_dead_letter(body, later, job.id, None), body, "a", "1")

    assert first.event_id == again.event_id
    assert other.event_id != first.event_id


def test_the_same_death_dead_lettered_again_a_second_later_is_the_same_event() -> None:
    # At-least-once dead-lettering may deliver one death twice, each copy stamped anew.
    job = Job(type="resize")
    body = encode(job)
    copy = headers("rejected")
    copy["x-death"] = [{**copy["x-death"][0], "time": DIED + timedelta(seconds=1)}]
    first = dead_event(read_dead_letter(body, headers("rejected"), job.id, None), body, "a", "1")
    again = dead_event(read_dead_letter(body, copy, job.id, None), body, "a", "1")
    replayed = job.model_copy(update={"submitted_at": DIED + timedelta(minutes=5)})
    body2 = encode(replayed)
    later = dead_event(read_dead_letter(body2, headers("rejected"), job.id, None), body2, "a", "1")

    assert first.event_id == again.event_id
    assert later.event_id != first.event_id  # a replayed job's next death is another event


def test_a_replayed_job_dead_again_is_dated_no_earlier_than_its_new_submission() -> None:
    replayed = Job(type="resize", submitted_at=DIED + timedelta(milliseconds=700))
    body = encode(replayed)
    event = dead_event(
        read_dead_letter(body, headers("rejected"), replayed.id, None), body, "a", "1"
    )
    assert event.at == replayed.submitted_at


def test_a_body_that_is_not_a_job_still_becomes_a_dead_event() -> None:
    by_message_id = read_dead_letter(b"\xff garbage", headers("rejected"), "garbage-1", None)
    assert by_message_id.job_id == "garbage-1"
    assert by_message_id.job is None and by_message_id.body_error

    by_body = read_dead_letter(b'{"v": 1, "id": "abc", "type": "render"}', {}, None, None)
    assert (by_body.job_id, by_body.type, by_body.reason) == ("abc", "render", "unknown")

    nameless = read_dead_letter(b"[]", {}, None, None)
    assert nameless.job_id.startswith("unknown-") and len(nameless.job_id) == 24
    event = dead_event(nameless, b"[]", "audit", "h:1")
    assert event.job_id == nameless.job_id and event.type == "unknown"
    assert event.error is not None and "not a valid job" in event.error.message


def test_reason_headers_as_bytes_are_read_too() -> None:
    job = Job(type="resize")
    dead = read_dead_letter(
        encode(job),
        {"x-death": [{"reason": b"rejected", "queue": b"q", "count": 1}]},
        job.id,
        None,
    )
    assert (dead.reason, dead.queue, dead.died_at) == ("rejected", "q", None)
