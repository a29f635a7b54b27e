"""W3C Trace Context: what the gateway takes from a caller, what a worker gives a job that
came without a trace, and that the trace follows a job into its follow-ups and events."""

from __future__ import annotations

import pytest

from shared import tracecontext
from shared.amqp import Delivery
from shared.events import EventSource
from shared.messages import FollowUp, Job, decode_job, encode
from shared.worker.checks import check_delivery, traced
from tests.support.stub_channel import StubChannel
from tests.unit.test_job_limits import BUDGET, LIMITS

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
VALID = f"00-{TRACE}-00f067aa0ba902b7-01"


def test_a_valid_traceparent_is_read_as_the_recommendation_says() -> None:
    parent = tracecontext.parse(VALID)
    assert parent == tracecontext.TraceParent(TRACE, "00f067aa0ba902b7", sampled=True)
    assert tracecontext.parse(VALID[:-2] + "00") == tracecontext.TraceParent(
        TRACE, "00f067aa0ba902b7", sampled=False
    )
    # A later version may add fields; version 00 may not.
    assert tracecontext.parse(f"01-{TRACE}-00f067aa0ba902b7-01-more") is not None


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        f"00-{TRACE.upper()}-00f067aa0ba902b7-01",  # upper case is not allowed
        f"00-{'0' * 32}-00f067aa0ba902b7-01",  # an all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # an all-zero parent
        f"ff-{TRACE}-00f067aa0ba902b7-01",  # the version kept invalid
        f"00-{TRACE}-00f067aa0ba902b7-01-extra",
        f"00-{TRACE[:-1]}-00f067aa0ba902b7-01",
    ],
)
def test_an_invalid_traceparent_starts_a_new_trace(value: str | None) -> None:
    assert tracecontext.parse(value) is None
    started = tracecontext.start(value)
    assert started.trace_id != TRACE and len(started.trace_id) == 32


def test_a_caller_trace_is_continued_from_a_new_span() -> None:
    started = tracecontext.start(VALID)
    assert started.trace_id == TRACE and started.parent_id != "00f067aa0ba902b7"
    assert tracecontext.parse(started.header()) == started


def test_the_trace_follows_the_job_into_its_follow_ups_and_events() -> None:
    job = Job(type="resize", trace_id=TRACE, then=FollowUp(type="render"))
    follow = job.follow_up(["outputs/x/a.png"])
    assert follow is not None and follow.trace_id == TRACE
    assert EventSource("resizer", "vm:1").about("job.started", job).trace_id == TRACE
    assert decode_job(encode(job)).trace_id == TRACE


def test_a_job_with_a_trace_id_not_of_the_w3c_form_does_not_decode() -> None:
    body = encode(Job(type="resize")).replace(b'"type"', b'"trace_id":"../x","type"', 1)
    with pytest.raises(Exception, match="trace_id"):
        decode_job(body)


def _checked(job: Job, headers: dict[str, object]) -> Job:
    delivery = Delivery(StubChannel(), 1, encode(job), job.id, headers, False)
    verdict = check_delivery(delivery, job.type, BUDGET, lambda _j: False, LIMITS)
    assert isinstance(verdict, Job)
    return traced(verdict, delivery)


def test_a_worker_gives_a_job_without_a_trace_its_header_trace_or_one_from_its_id() -> None:
    untraced = Job(type="resize", params={"width": 10})
    assert _checked(untraced, {"traceparent": VALID}).trace_id == TRACE
    assert _checked(untraced, {"traceparent": VALID.encode()}).trace_id == TRACE
    derived = _checked(untraced, {}).trace_id
    assert derived == tracecontext.trace_id_of_job(untraced.id)
    assert _checked(untraced, {"traceparent": "junk"}).trace_id == derived  # every delivery
    # A trace of its own wins over a header.
    own = untraced.model_copy(update={"trace_id": "1" * 32})
    assert _checked(own, {"traceparent": VALID}).trace_id == "1" * 32
