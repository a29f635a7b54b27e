"""Bodies the gateway refuses with their place: duplicate JSON keys, lone surrogates, duplicate
or non-UTF-8 form fields, a truncated multipart body; and a refusal leaves no key and no input."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from services.gateway import submit
from shared import strictjson
from tests.support.gateway import in_process_gateway
from tests.unit.test_gateway_in_doubt import ScriptedPublisher

MAIL = b'{"to": ["ann@example.org"], "subject": "hello", "text": "hi"}'
JSON = {"content-type": "application/json"}
BOUNDARY = "b0undary"
MULTIPART = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    return buffer.getvalue()


def part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
    if filename:
        head += "Content-Type: image/png\r\n"
    return head.encode() + b"\r\n" + value + b"\r\n"


END = f"--{BOUNDARY}--\r\n".encode()


# --- strictjson ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('{"to": 1, "to": 2}', ("to",)),
        ('{"data": {"rows": [{"a": 1, "a": 1}]}}', ("data", "rows", 0, "a")),
        ('[{"x": {"k": 1, "k": 2}}]', (0, "x", "k")),
    ],
)
def test_a_key_given_twice_at_any_depth_is_refused_with_its_place(
    text: str, path: tuple[Any, ...]
) -> None:
    with pytest.raises(strictjson.BadJSONValue) as caught:
        strictjson.loads(text)
    assert (caught.value.kind, caught.value.path) == ("duplicate_key", path)


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('{"subject": "\\udfff"}', ("subject",)),
        ('{"to": ["ok", "x\\ud800y"]}', ("to", 1)),
        ('{"data": {"\\udfff": 1}}', ("data", "\\udfff")),
        ('"\\udc00"', ()),
    ],
)
def test_a_lone_surrogate_anywhere_is_refused_with_its_place(
    text: str, path: tuple[Any, ...]
) -> None:
    with pytest.raises(strictjson.BadJSONValue) as caught:
        strictjson.loads(text.encode())
    assert (caught.value.kind, caught.value.path) == ("lone_surrogate", path)


def test_a_surrogate_pair_is_one_character_and_taken() -> None:
    assert strictjson.loads('{"s": "\\ud83d\\ude00"}') == {"s": "\U0001f600"}


def test_ordinary_json_reads_as_before() -> None:
    assert strictjson.loads(b'{"a": [1, {"b": null}], "c": "\xc3\xa9"}') == {
        "a": [1, {"b": None}],
        "c": "é",
    }


# --- through the app ----------------------------------------------------------------------


@pytest.fixture
def publisher() -> ScriptedPublisher:
    return ScriptedPublisher()


@pytest.fixture
def blob_dir(tmp_path: Path) -> Path:
    return tmp_path / "blobs"


@pytest.fixture
def http(publisher: ScriptedPublisher, blob_dir: Path) -> Iterator[TestClient]:
    with in_process_gateway(publisher, blob_dir) as client:
        yield client


def inputs(blob_dir: Path) -> list[Path]:
    return [p for p in (blob_dir / "inputs").rglob("*") if p.is_file()]


def detail(response: Any) -> tuple[list[Any], str]:
    [error] = response.json()["detail"]
    return error["loc"], error["type"]


def test_a_lone_surrogate_is_422_and_its_key_then_takes_a_good_body(
    http: TestClient, publisher: ScriptedPublisher
) -> None:
    bad = b'{"to": ["ann@example.org"], "subject": "\\udfff", "text": "hi"}'
    key = {"Idempotency-Key": "surrogate-1", **JSON}
    response = http.post("/jobs/mail", content=bad, headers=key)
    assert response.status_code == 422, response.text
    assert detail(response) == (["body", "subject"], "lone_surrogate")
    good = http.post("/jobs/mail", content=MAIL, headers=key)
    assert good.status_code == 202, good.text
    assert len(publisher.jobs) == 1


def test_a_lone_surrogate_in_an_uploads_follow_up_stores_nothing_and_frees_the_key(
    http: TestClient, blob_dir: Path
) -> None:
    then = b'{"type": "mail", "params": {"to": ["\\udfff@example.org"], "subject": "s"}}'
    key = {"Idempotency-Key": "surrogate-2", **MULTIPART}
    body = part("width", b"4") + part("then", then) + part("file", png(), "a.png") + END
    response = http.post("/jobs/resize", content=body, headers=key)
    assert response.status_code == 422, response.text
    assert detail(response) == (["body", "then", "params", "to", 0], "lone_surrogate")
    assert inputs(blob_dir) == []
    good = part("width", b"4") + part("file", png(), "a.png") + END
    assert http.post("/jobs/resize", content=good, headers=key).status_code == 202


def test_a_duplicate_json_key_is_422_naming_it(http: TestClient) -> None:
    body = b'{"to": ["ann@example.org"], "to": ["bob@example.org"], "subject": "s", "text": "t"}'
    response = http.post("/jobs/mail", content=body, headers=JSON)
    assert response.status_code == 422, response.text
    assert detail(response) == (["body", "to"], "duplicate_key")
    assert "'to'" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        (part("width", b"4") + part("width", b"8") + part("file", png(), "a.png"), "width"),
        (part("width", b"4") + part("file", png(), "a.png") + part("file", png(), "b.png"), "file"),
    ],
)
def test_a_form_field_given_twice_is_422_naming_it(
    http: TestClient, blob_dir: Path, fields: bytes, name: str
) -> None:
    response = http.post("/jobs/resize", content=fields + END, headers=MULTIPART)
    assert response.status_code == 422, response.text
    assert detail(response) == (["body", name], "duplicate_field")
    assert inputs(blob_dir) == []


@pytest.mark.parametrize(
    "ending", [b"", f"--{BOUNDARY}".encode(), f"--{BOUNDARY}-".encode()], ids=["none", "open", "-"]
)
def test_a_multipart_body_without_its_closing_boundary_is_400(
    http: TestClient, blob_dir: Path, ending: bytes
) -> None:
    body = part("width", b"4") + part("file", png(), "a.png") + ending
    response = http.post("/jobs/resize", content=body, headers=MULTIPART)
    assert response.status_code == 400, response.text
    assert "closing boundary" in response.json()["detail"]
    assert inputs(blob_dir) == []


def test_a_form_field_that_is_not_utf8_is_422(http: TestClient) -> None:
    body = part("width", b"1\xff") + part("file", png(), "a.png") + END
    response = http.post("/jobs/resize", content=body, headers=MULTIPART)
    assert response.status_code == 422, response.text
    assert detail(response) == (["body", "width"], "not_utf8")


def test_a_whole_multipart_body_is_still_taken(http: TestClient) -> None:
    body = part("width", b"4") + part("file", png(), "a.png") + END
    assert http.post("/jobs/resize", content=body, headers=MULTIPART).status_code == 202


def test_a_failure_before_publishing_frees_the_key_and_deletes_the_inputs(
    http: TestClient, blob_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = submit.job_message
    calls = 0

    def fails_once(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("cannot encode")
        return real(*args)

    monkeypatch.setattr(submit, "job_message", fails_once)
    key = {"Idempotency-Key": "fails-once", **MULTIPART}
    body = part("width", b"4") + part("file", png(), "a.png") + END
    with pytest.raises(ValueError, match="cannot encode"):
        http.post("/jobs/resize", content=body, headers=key)
    assert inputs(blob_dir) == []
    response = http.post("/jobs/resize", content=body, headers=key)
    assert response.status_code == 202, response.text  # the key was never reserved
    assert "Idempotent-Replayed" not in response.headers


def test_a_field_that_takes_a_list_may_be_repeated(
    http: TestClient, publisher: ScriptedPublisher
) -> None:
    body = part("sizes", b"4x4") + part("sizes", b"8") + part("file", png(), "a.png") + END
    response = http.post("/jobs/resize", content=body, headers=MULTIPART)
    assert response.status_code == 202, response.text
    assert [s["width"] for s in publisher.jobs[0]["params"]["sizes"]] == [4, 8]
