"""The gateway reads an upload's form into its model itself (`forms.read_form_model`), where
FastAPI used to map it onto a form parameter: the same form must give the same model, or the
same 422 (place, message, kind), as FastAPI's own mapping. Each case is sent to two routes of
one app that read the form alike (Starlette's reading; the gateway's strict reading is
tests/unit/test_gateway_strict_body.py's): FastAPI's form parameter, and ours."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from pydantic import BaseModel

from services.gateway.forms import FORM_MODELS, list_fields, read_form_model

ResizeForm = FORM_MODELS["resize"]
LISTS = list_fields(ResizeForm)


def _seen(form: BaseModel) -> dict[str, Any]:
    values = form.model_dump(mode="json", exclude={"file"})
    values["file"] = getattr(form, "file").filename  # noqa: B009 (a field of a made model)
    return values


def _app() -> FastAPI:
    app = FastAPI()

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{k: e[k] for k in ("loc", "msg", "type")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, 422)

    @app.post("/fastapi")
    async def by_fastapi(
        form: Annotated[ResizeForm, Form(media_type="multipart/form-data")],  # type: ignore[valid-type]
    ) -> dict[str, Any]:
        return _seen(form)

    @app.post("/ours")
    async def by_us(request: Request) -> dict[str, Any]:
        async with request.form() as fields:
            return _seen(read_form_model(ResizeForm, LISTS, fields))

    return app


IMAGE = ("a.png", b"the bytes are the upload check's to judge", "image/png")
NO_FILE_CHOSEN = ("", b"", "application/octet-stream")  # httpx leaves out filename=""


@pytest.mark.parametrize(
    ("data", "files"),
    [
        ({"width": "800"}, [("file", IMAGE)]),
        ({"width": "800", "height": "", "quality": ""}, [("file", IMAGE)]),
        ({"sizes": ["800x600", "320", "x100"], "format": "webp"}, [("file", IMAGE)]),
        ({"sizes": ["800x600", ""], "width": ""}, [("file", IMAGE)]),
        ({"sizes": [""]}, [("file", IMAGE)]),
        ({"width": "800", "then": '{"type": "mail"}'}, [("file", IMAGE)]),
        ({"width": "eight hundred"}, [("file", IMAGE)]),
        ({"width": "true"}, [("file", IMAGE)]),
        ({"width": "800", "quality": "0"}, [("file", IMAGE)]),
        ({"width": "800", "fit": "stretch"}, [("file", IMAGE)]),
        ({"width": "800", "colour": "red"}, [("file", IMAGE)]),
        ({"width": "800", "colour": ["red", "blue"]}, [("file", IMAGE)]),
        ({"width": "800"}, []),  # urlencoded, no file
        ({"width": "800"}, [("quality", (None, b"90"))]),  # multipart, no file
        ({"width": "800", "file": "not a file"}, [("quality", (None, b"90"))]),
        ({"width": "800"}, [("file", NO_FILE_CHOSEN)]),
        ({"width": "800"}, [("file", IMAGE), ("extra", IMAGE)]),
        ({"width": "800"}, [("sizes", IMAGE), ("file", IMAGE)]),
        ({}, [("file", IMAGE)]),
    ],
)
def test_a_form_reads_as_fastapis_own_mapping_reads_it(
    data: dict[str, Any],
    files: list[tuple[str, tuple[str | None, bytes, str] | tuple[None, bytes]]],
) -> None:
    with TestClient(_app()) as client:
        by_fastapi = client.post("/fastapi", data=data, files=files or None)
        ours = client.post("/ours", data=data, files=files or None)
    assert (ours.status_code, ours.json()) == (by_fastapi.status_code, by_fastapi.json())


def _browser_form(*parts: tuple[str, str | None, bytes]) -> tuple[bytes, str]:
    """A multipart body as a browser sends it: a file input with no file chosen is a part with
    `filename=""` and nothing in it (which httpx cannot make)."""
    boundary = "browserboundary"
    body = b""
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"\r\nContent-Type: application/octet-stream'
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        body += value + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize(
    "parts",
    [
        [("width", None, b"800"), ("file", "", b"")],
        [("width", None, b"800"), ("file", "", b""), ("file", "a.png", b"x")],
        [("width", None, b"800"), ("sizes", "", b""), ("file", "a.png", b"x")],
        [("sizes", None, b"320"), ("sizes", "", b""), ("file", "a.png", b"x")],
        [("width", None, b"800"), ("extra", "", b""), ("file", "a.png", b"x")],
    ],
)
def test_a_file_input_with_no_file_chosen_reads_as_fastapis_mapping_reads_it(
    parts: list[tuple[str, str | None, bytes]],
) -> None:
    body, content_type = _browser_form(*parts)
    headers = {"Content-Type": content_type}
    with TestClient(_app()) as client:
        by_fastapi = client.post("/fastapi", content=body, headers=headers)
        ours = client.post("/ours", content=body, headers=headers)
    assert (ours.status_code, ours.json()) == (by_fastapi.status_code, by_fastapi.json())


def test_the_cases_above_include_both_answers() -> None:
    """The comparison means something only if some forms are taken and some refused."""
    with TestClient(_app()) as client:
        taken = client.post("/ours", data={"width": "800"}, files=[("file", IMAGE)])
        refused = client.post("/ours", data={"width": "x"}, files=[("file", IMAGE)])
    assert taken.status_code == 200
    assert taken.json()["width"] == 800
    assert taken.json()["file"] == "a.png"
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "width"]
