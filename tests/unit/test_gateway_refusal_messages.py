"""Refusals as a newcomer reads them: the gateway's answer to a resize with no size and to an
empty upload, and the one line the CLI makes of each (no stray `: `, no "not an image" for a
file with no bytes)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from cli.gateway_client import describe
from services.gateway.rejections import field_error, install
from tests.support.gateway import in_process_gateway
from tests.unit.test_gateway_in_doubt import ScriptedPublisher


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def http(tmp_path: Path) -> Iterator[TestClient]:
    with in_process_gateway(ScriptedPublisher(), tmp_path / "blobs") as client:
        yield client


def test_a_resize_with_no_size_is_one_line_without_an_empty_place(http: TestClient) -> None:
    response = http.post("/jobs/resize", files={"file": ("a.png", png())})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body"]
    assert describe(response) == "the gateway answered 422: give width, height or sizes"


def test_an_empty_upload_is_422_naming_file_as_empty(http: TestClient, tmp_path: Path) -> None:
    response = http.post("/jobs/resize", files={"file": ("a.png", b"")}, data={"width": "8"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == [
        {"loc": ["body", "file"], "msg": "the upload is empty (0 bytes)", "type": "empty_file"}
    ]
    assert describe(response) == "the gateway answered 422: file: the upload is empty (0 bytes)"
    assert list((tmp_path / "blobs").rglob("input.*")) == []


@pytest.mark.parametrize(
    ("detail", "line"),
    [
        ([{"loc": ["body"], "msg": "give width, height or sizes"}], "give width, height or sizes"),
        ([{"loc": [], "msg": "no place"}], "no place"),
        ([{"loc": ["body", "sizes", 0], "msg": "bad"}], "sizes.0: bad"),
        (
            [{"loc": ["body", "a"], "msg": "x"}, {"loc": ["body"], "msg": "y"}],
            "a: x; y",
        ),
        ("plain words", "plain words"),
    ],
)
def test_every_refusal_shape_reads_without_a_stray_colon(detail: object, line: str) -> None:
    response = httpx.Response(422, json={"detail": detail})
    assert describe(response) == f"the gateway answered 422: {line}"


def test_a_refusal_about_the_whole_body_has_no_empty_place() -> None:
    app = FastAPI()
    install(app, on_rejected=lambda *_: None)

    @app.post("/whole")
    def whole() -> None:
        raise field_error((), "give width, height or sizes")

    response = TestClient(app, base_url="http://localhost").post("/whole")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body"]
    assert describe(response) == "the gateway answered 422: give width, height or sizes"
