"""The gateway's OpenAPI document says what the server does: the same requests valid for both
(each case is checked against the schema with a JSON Schema validator and sent to the
gateway), every answer a route can give documented with its body and headers (schemathesis
over every operation), and only POST at a submission path (405, not the 422 of an id)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from PIL import Image
from schemathesis.generation.case import Case

from tests.support.fake_http import JsonServer
from tests.support.gateway import in_process_gateway
from tests.support.openapi_checks import CONFORMANCE
from tests.unit.test_gateway_in_doubt import ScriptedPublisher

INVOICE: dict[str, Any] = {
    "seller": {"name": "S"},
    "buyer": {"name": "B"},
    "number": "INV-1",
    "issue_date": "2026-01-01",
    "due_date": "2026-01-31",
    "items": [{"description": "x", "quantity": 2, "unit_price": "1.00", "vat_rate": "0.19"}],
}
MAIL: dict[str, Any] = {"to": ["ann@example.com"], "subject": "Hello", "text": "Hi"}


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[TestClient]:
    with (
        JsonServer() as audit,  # answers 404 for every job: no 503 from an absent audit
        in_process_gateway(
            ScriptedPublisher(),
            tmp_path / "blobs",
            audit_url=audit.url,
            allowed_hosts=("localhost", "testserver"),  # schemathesis' client says testserver
        ) as client,
    ):
        yield client


def schema_says(client: TestClient, component: str, value: dict[str, Any]) -> bool:
    document = client.get("/openapi.json").json()
    schema = {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
    return jsonschema_rs.Draft202012Validator(schema).is_valid(value)


@pytest.mark.parametrize(
    ("path", "component", "body", "valid"),
    [
        ("/jobs/mail", "MailRequest", MAIL, True),
        ("/jobs/mail", "MailRequest", {**MAIL, "to": [""]}, False),
        ("/jobs/mail", "MailRequest", {**MAIL, "to": ["two@example.com, x@example.com"]}, False),
        ("/jobs/mail", "MailRequest", {**MAIL, "to": ["Ann <ann@example.com>"]}, True),
        ("/jobs/mail", "MailRequest", {"to": ["ann@example.com"], "subject": "no body"}, False),
        ("/jobs/mail", "MailRequest", {**MAIL, "subject": "a\r\nBcc: x@example.com"}, False),
        ("/jobs/mail", "MailRequest", {**MAIL, "attachments": ["not-a-job-id"]}, False),
        ("/jobs/mail", "MailRequest", {**MAIL, "to": ["ann@example.com"] * 101}, False),
        ("/jobs/render", "RenderRequest", {"template": "invoice"}, False),
        ("/jobs/render", "RenderRequest", {"template": "invoice", "data": {}}, False),
        ("/jobs/render", "RenderRequest", {"template": "invoice", "data": INVOICE}, True),
        ("/jobs/render", "RenderRequest", {"template": "report"}, False),
        ("/jobs/render", "RenderRequest", {"template": "document"}, True),
        (
            "/jobs/render",
            "RenderRequest",
            {"template": "report", "data": {"sections": [{"heading": "Q2", "table": {}}]}},
            False,
        ),
        (
            "/jobs/render",
            "RenderRequest",
            {"template": "document", "then": {"type": "mail", "params": MAIL}},
            True,
        ),
        (
            "/jobs/render",
            "RenderRequest",
            {"template": "document", "then": {"type": "mail", "params": {**MAIL, "to": [""]}}},
            False,
        ),
        (
            "/jobs/render",
            "RenderRequest",
            {"template": "document", "then": {"type": "resize", "params": {}}},
            False,
        ),
    ],
)
def test_a_json_submission_is_valid_for_the_schema_exactly_when_the_server_takes_it(
    gateway: TestClient, path: str, component: str, body: dict[str, Any], valid: bool
) -> None:
    answer = gateway.post(path, json=body)

    assert answer.status_code == (202 if valid else 422), answer.text
    assert schema_says(gateway, component, body) is valid


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (9, 99, 199)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("form", "valid"),
    [
        ({"width": "16"}, True),
        ({"sizes": ["16x12", "x8"]}, True),
        ({}, False),  # no size at all
        ({"width": "16", "sizes": ["8x8"]}, False),  # both
        ({"width": "16", "colour": "red"}, False),  # an unknown field
        ({"width": "100000"}, False),  # over MAX_OUTPUT_SIDE
        ({"sizes": ["16y12"]}, False),
    ],
)
def test_a_resize_form_is_valid_for_the_schema_exactly_when_the_server_takes_it(
    gateway: TestClient, form: dict[str, Any], valid: bool
) -> None:
    answer = gateway.post("/jobs/resize", data=form, files={"file": ("a.png", png())})

    assert answer.status_code == (202 if valid else 422), answer.text
    as_json = {
        name: [*value] if isinstance(value, list) else int(value) if value.isdigit() else value
        for name, value in form.items()
    }
    assert schema_says(gateway, "ResizeForm", {**as_json, "file": "a.png"}) is valid


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("job_type", ["resize", "render", "mail"])
def test_a_submission_path_takes_post_only(gateway: TestClient, method: str, job_type: str) -> None:
    answer = gateway.request(method, f"/jobs/{job_type}")

    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert answer.json() == {"detail": f"/jobs/{job_type} takes POST only"}


def test_a_job_id_path_is_still_a_job(gateway: TestClient) -> None:
    answer = gateway.get("/jobs/00000000-0000-4000-8000-000000000000")

    assert answer.status_code == 404


def test_every_answer_of_every_operation_is_documented(gateway: TestClient) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", gateway.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    key = gateway.headers["authorization"]
    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=40,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def conforms(case: Case) -> None:
            case.headers = {**(case.headers or {}), "authorization": key}
            case.call_and_validate(checks=CONFORMANCE)

        conforms()


def test_a_refusal_without_a_key_is_documented(gateway: TestClient) -> None:
    document = gateway.get("/openapi.json").json()
    answer = gateway.get(
        "/jobs/00000000-0000-4000-8000-000000000000", headers={"authorization": ""}
    )

    documented = document["paths"]["/jobs/{job_id}"]["get"]["responses"]["401"]
    assert answer.status_code == 401
    assert documented["content"]["application/json"]["schema"]["$ref"].endswith("/Refusal")
    assert "WWW-Authenticate" in documented["headers"]
    assert schema_says(gateway, "Refusal", answer.json())
