"""Strict messages at the workers (issue 13, item 8), against the running suite: jobs put
straight on a queue are validated as strictly as the gateway validates them, what a message
claims about its own past (attempt, x-delivery-count) cannot kill a good job, and an
oversized ICC profile does not multiply into the outputs.

Each case asserts its outcome, then that the service takes the next good job.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from PIL import Image

from shared.messages import Job, encode
from tests.security.conftest import GOOD_RECIPIENT, Suite, small_png
from tests.support.broker import EventWatcher


def resize_job(suite: Suite, params: dict[str, Any]) -> Job:
    return suite.job_with_input("resize", params, small_png(), "in.png")


# --- params: the declared JSON types, no coercion ----------------------------------------


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"width": "16"}, "width: Input should be a valid integer"),
        ({"width": True}, "width: Input should be a valid integer"),
        ({"width": 16.0}, "width: Input should be a valid integer"),
        ({"sizes": [{"width": "16"}]}, "sizes.0.width: Input should be a valid integer"),
        ({"width": 16, "quality": "80"}, "quality: Input should be a valid integer"),
    ],
)
def test_resize_params_of_another_json_type_fail_naming_the_field(
    suite: Suite, events: EventWatcher, params: dict[str, Any], says: str
) -> None:
    job = resize_job(suite, params)

    event = suite.publish_with_good_job(events, job)

    assert event["event"] == "job.failed", event
    assert event["error"] == {"kind": "invalid_params", "message": f"invalid params: {says}"}
    assert suite.blobs.list(f"outputs/{job.id}") == []
    suite.check_after_case()


def test_render_data_of_another_json_type_fails_naming_the_field(
    suite: Suite, events: EventWatcher
) -> None:
    data = {"blocks": [{"heading": "h", "level": "2"}]}
    job = Job(type="render", params={"template": "document", "data": data})

    event = suite.publish_with_good_job(events, job)

    assert event["event"] == "job.failed", event
    assert "data.blocks.0.level: Input should be a valid integer" in event["error"]["message"]
    suite.check_after_case()


def test_a_job_envelope_with_a_string_attempt_is_dead_lettered_unrun(
    suite: Suite, events: EventWatcher
) -> None:
    worker = suite.workers["resizer"]
    before = len(worker.logged("undecodable_message_dead_lettered"))
    job = resize_job(suite, {"width": 16})
    body = {**json.loads(encode(job)), "attempt": "2", "inputs": job.inputs}
    suite.broker.publish_raw(json.dumps(body).encode(), "resize", message_id=job.id)
    good = suite.good_job("resize")
    suite.broker.publish_job(good)

    suite.succeeded(events, good.id)
    assert len(worker.logged("undecodable_message_dead_lettered")) == before + 1
    assert events.of(job.id) == []  # never started
    suite.check_after_case()


def test_an_invoice_rate_that_is_not_a_fraction_is_a_422_at_the_gateway(suite: Suite) -> None:
    item = {"description": "x", "quantity": 2, "unit_price": "1.00", "vat_rate": "19"}
    data = {
        "seller": {"name": "S"},
        "buyer": {"name": "B"},
        "number": "1",
        "issue_date": "2025-01-01",
        "due_date": "2025-01-31",
        "items": [item],
    }

    refused = suite.http.post("/jobs/render", json={"template": "invoice", "data": data})

    assert refused.status_code == 422, refused.text
    assert "items.0.vat_rate: a VAT rate is a fraction" in refused.json()["detail"][0]["msg"]
    accepted = suite.http.post(
        "/jobs/render",
        json={"template": "invoice", "data": {**data, "items": [{**item, "vat_rate": "0.19"}]}},
    )
    assert accepted.status_code == 202, accepted.text


# --- what a message claims about its past ---------------------------------------------------


def test_a_forged_attempt_999_does_not_make_a_passing_fault_final(
    suite: Suite, events: EventWatcher
) -> None:
    params = {"to": [GOOD_RECIPIENT], "subject": "attempt 999", "text": "ok"}
    job = Job(type="mail", params=params, attempt=999)
    suite.sink.set_chaos(451, times=1)  # the job's first try meets a passing SMTP fault
    try:
        event = suite.publish_with_good_job(events, job)
    finally:
        suite.sink.clear_chaos()

    assert event["event"] == "job.succeeded", event
    [retrying] = events.of(job.id, "job.retrying")
    assert retrying["attempt"] == 1
    assert event["attempt"] == 2
    suite.check_after_case()


def test_a_good_job_claiming_attempt_999_succeeds_as_attempt_1(
    suite: Suite, events: EventWatcher
) -> None:
    job = resize_job(suite, {"width": 16}).model_copy(update={"attempt": 999})

    event = suite.publish_with_good_job(events, job)

    assert event["event"] == "job.succeeded", event
    assert event["attempt"] == 1
    suite.check_after_case()


def test_a_forged_x_delivery_count_on_a_first_delivery_does_not_refuse_a_good_job(
    suite: Suite, events: EventWatcher
) -> None:
    job = resize_job(suite, {"width": 16})
    headers = {"x-delivery-count": 999}
    suite.broker.publish_raw(
        encode(job),
        "resize",
        message_id=job.id,
        properties={"type": "resize", "headers": headers},
    )

    assert suite.succeeded(events, job.id)["event"] == "job.succeeded"
    good = suite.good_job("resize")
    suite.broker.publish_job(good)
    suite.succeeded(events, good.id)
    suite.check_after_case()


# --- what a job may write -------------------------------------------------------------------


def png_with_icc(icc: bytes) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 120, 200)).save(out, "PNG", icc_profile=icc)
    return out.getvalue()


def test_a_1_kb_png_with_a_1_mb_icc_profile_and_20_sizes_writes_small_outputs(
    suite: Suite, events: EventWatcher
) -> None:
    icc = bytes(16) + b"RGB " + bytes(1_000_000 - 20)  # claims RGB, so it used to be copied
    data = png_with_icc(icc)
    assert len(data) < 5_000
    params = {"sizes": [{"width": w} for w in range(8, 28)], "format": "jpeg"}
    job = suite.job_with_input("resize", params, data, "icc.png")

    event = suite.publish_with_good_job(events, job)

    assert event["event"] == "job.succeeded", event
    assert len(event["outputs"]) == 20
    written = sum(suite.blobs.size(key) for key in event["outputs"])
    assert written < 50_000, written  # was over 20 MB
    suite.check_after_case()
