"""Absurd resize parameters (corpus/resize/), malformed and unknown requests and messages
(corpus/requests/), and oversize bodies (made here: the corpus stays small).

Through the gateway: a status with a body naming the problem. Straight onto the queue: the
worker fails the job naming the parameter, or dead-letters a message that is not a job
(the dead letter's own reading, as `jobsuite dlq` and the audit service show it, says why).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pika
import pytest
from PIL import Image

from services.audit.deadletters import read_dead_letter
from tests.security.conftest import (
    MAX_UPLOAD_BYTES,
    Suite,
    corpus_files,
    corpus_json,
    small_png,
)
from tests.support.broker import EventWatcher


@dataclass(frozen=True)
class ParamsCase:
    gateway: int
    field: tuple[str | int, ...]  # where the 422 points, after "body"
    says: str  # in the resizer's job.failed message


ABSURD = "absurd"
INVALID = "invalid params"
RESIZE: dict[str, ParamsCase] = {
    "width-over-max-output-side": ParamsCase(422, ("width",), ABSURD),
    "width-bignum": ParamsCase(422, ("width",), ABSURD),
    "height-over-max-output-side-in-sizes": ParamsCase(422, ("sizes", 1, "height"), ABSURD),
    # Sides within MAX_OUTPUT_SIDE; only the worker knows the output is 4 MP, over 1 MP.
    "exact-output-over-pixel-limit": ParamsCase(202, (), ABSURD),
    "width-zero": ParamsCase(422, ("width",), INVALID),
    "width-negative": ParamsCase(422, ("width",), INVALID),
    "width-fraction": ParamsCase(422, ("width",), INVALID),
    "width-with-unit": ParamsCase(422, ("width",), INVALID),
    "quality-over-95": ParamsCase(422, ("quality",), INVALID),
    "fit-unknown": ParamsCase(422, ("fit",), INVALID),
    "format-eps": ParamsCase(422, ("format",), INVALID),
    "sizes-too-many": ParamsCase(422, ("sizes",), INVALID),
    "no-size": ParamsCase(422, (), INVALID),
    "size-and-sizes": ParamsCase(422, (), INVALID),
}
RESIZE_FILES = corpus_files("resize")


@dataclass(frozen=True)
class RequestCase:
    path: str
    status: int
    says: str  # in the response body


REQUESTS: dict[str, RequestCase] = {
    "malformed-truncated.json": RequestCase("/jobs/mail", 422, "JSON decode error"),
    "malformed-not-json.txt": RequestCase("/jobs/mail", 422, "JSON decode error"),
    "malformed-deep-nesting.json": RequestCase("/jobs/mail", 422, "nested too deeply"),
    "malformed-invalid-utf8.json": RequestCase("/jobs/mail", 422, "not UTF-8 text"),
    "malformed-huge-integer.json": RequestCase("/jobs/mail", 422, "number too long"),
    # Python's json takes these and pydantic would write them on as null: other data.
    "malformed-nan.json": RequestCase("/jobs/render", 422, "NaN is not a JSON number"),
    "malformed-infinity.json": RequestCase("/jobs/render", 422, "-Infinity is not a JSON number"),
    "not-an-object.json": RequestCase("/jobs/mail", 422, "valid dictionary"),
    "empty-body.json": RequestCase("/jobs/mail", 422, "Field required"),
    "unknown-job-type.json": RequestCase("/jobs/frobnicate", 404, "unknown job type"),
    "then-unknown-job-type.json": RequestCase("/jobs/render", 422, "'resize', 'render' or 'mail'"),
    "job-schema-version-2.json": RequestCase("/jobs/render", 422, "Extra inputs"),
}
REQUEST_FILES = corpus_files("requests")


def test_every_case_has_an_expectation() -> None:
    assert sorted(p.stem for p in RESIZE_FILES) == sorted(RESIZE)
    assert sorted(p.name for p in REQUEST_FILES) == sorted(REQUESTS)


def _form(params: dict[str, object]) -> dict[str, object]:
    """The resize params as the multipart fields the gateway takes (sizes as "WxH")."""
    form: dict[str, object] = {k: str(v) for k, v in params.items() if k != "sizes"}
    if "sizes" in params:
        boxes = params["sizes"]
        assert isinstance(boxes, list)
        form["sizes"] = [f"{b.get('width', '')}x{b.get('height', '')}" for b in boxes]
    return form


def _good_upload(suite: Suite, events: EventWatcher) -> None:
    response = suite.http.post(
        "/jobs/resize", files={"file": ("ok.png", small_png())}, data={"width": "8"}
    )
    assert response.status_code == 202, response.text
    suite.succeeded(events, response.json()["id"])


@pytest.mark.parametrize("path", RESIZE_FILES, ids=lambda p: p.stem)
def test_absurd_resize_params_through_the_gateway(
    suite: Suite, events: EventWatcher, path: Path
) -> None:
    case = RESIZE[path.stem]
    response = suite.http.post(
        "/jobs/resize", files={"file": ("in.png", small_png())}, data=_form(corpus_json(path))
    )
    assert response.status_code == case.gateway, response.text
    if case.gateway == 202:
        event = suite.failed(events, response.json()["id"])
        assert case.says in event["error"]["message"], event["error"]
    else:
        locs = [tuple(e["loc"]) for e in response.json()["detail"]]
        assert ("body", *case.field) in locs, locs
    _good_upload(suite, events)
    suite.check_after_case()


@pytest.mark.parametrize("path", RESIZE_FILES, ids=lambda p: p.stem)
def test_absurd_resize_params_from_the_queue(
    suite: Suite, events: EventWatcher, path: Path
) -> None:
    job = suite.job_with_input("resize", corpus_json(path), small_png(), "in.png")
    event = suite.publish_with_good_job(events, job)
    assert event["event"] == "job.failed", event
    assert RESIZE[path.stem].says in event["error"]["message"], event["error"]
    suite.check_after_case()


@pytest.mark.parametrize("path", REQUEST_FILES, ids=lambda p: p.name)
def test_malformed_requests_get_a_clear_answer(
    suite: Suite, events: EventWatcher, path: Path
) -> None:
    case = REQUESTS[path.name]
    response = suite.http.post(
        case.path, content=path.read_bytes(), headers={"content-type": "application/json"}
    )
    assert response.status_code == case.status, response.text
    assert case.says in response.text
    _good_upload(suite, events)
    suite.check_after_case()


@pytest.mark.parametrize("path", REQUEST_FILES, ids=lambda p: p.name)
def test_messages_that_are_not_jobs_are_dead_lettered_with_a_reason(
    suite: Suite, events: EventWatcher, path: Path
) -> None:
    message_id = f"hostile-{uuid.uuid4()}"
    suite.broker.publish_raw(path.read_bytes(), "resize", message_id=message_id)
    good = suite.good_job("resize")
    suite.broker.publish_job(good)
    suite.succeeded(events, good.id)  # taken after the hostile message: that one is settled
    dead = [
        (props, body)
        for props, body in suite.broker.drain(suite.broker.names.dead_queue)
        if props.message_id == message_id
    ]
    assert len(dead) == 1
    props, body = dead[0]
    letter = read_dead_letter(body, props.headers or {}, props.message_id, props.type)
    assert letter.reason == "rejected"
    assert letter.body_error and letter.body_error.startswith("not a valid job"), letter
    suite.check_after_case()


def test_an_unknown_job_type_is_unroutable_on_the_broker(suite: Suite) -> None:
    """A client that skips the gateway cannot even queue it: `mandatory` brings it back."""
    job = corpus_json(corpus_files("requests")[0].parent / "unknown-job-type.json")
    with pytest.raises(pika.exceptions.UnroutableError):
        suite.broker.publish_raw(str(job).encode(), "frobnicate", message_id="unroutable")


def _png_over_the_upload_limit() -> bytes:
    """A valid PNG (the gateway's header check passes) padded past MAX_UPLOAD_BYTES."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    return buffer.getvalue() + b"\x00" * (MAX_UPLOAD_BYTES + 1)


def _chunks(total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * 8192
        sent += 8192


@pytest.mark.parametrize(
    "request_kind", ["json-body", "chunked-body", "upload-over-limit", "upload-far-over"]
)
def test_oversize_bodies_are_refused_with_413(
    suite: Suite, events: EventWatcher, request_kind: str
) -> None:
    big = MAX_UPLOAD_BYTES * 3
    http = suite.http
    if request_kind == "json-body":
        body = {"to": ["ann@example.org"], "subject": "s", "text": "x" * big}
        response = http.post("/jobs/mail", json=body)
    elif request_kind == "chunked-body":  # no Content-Length: counted as it streams in
        headers = {"content-type": "application/json"}
        response = http.post("/jobs/mail", content=_chunks(big), headers=headers)
    elif request_kind == "upload-over-limit":  # within the envelope: the copy stops it
        files = {"file": ("big.png", _png_over_the_upload_limit())}
        response = http.post("/jobs/resize", files=files, data={"width": "8"})
    else:
        files = {"file": ("big.png", _png_over_the_upload_limit() + b"\x00" * big)}
        response = http.post("/jobs/resize", files=files, data={"width": "8"})
    assert response.status_code == 413, response.text
    assert f"larger than {MAX_UPLOAD_BYTES} bytes" in response.json()["detail"]
    assert not any((suite.settings.blob_dir / "inputs").glob("*/.tmp-*"))  # no half-copied upload
    _good_upload(suite, events)
    suite.check_after_case()
