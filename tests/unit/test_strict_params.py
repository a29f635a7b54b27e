"""Params and jobs are validated strictly, with the same models at the gateway and in the
workers: every value has its declared JSON type, nothing is coerced (`"16"` and `true` are
not integers), and a field that takes two forms says so (an invoice's `quantity`)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from shared.errors import DecodeError
from shared.jobtypes.mail import MailParams
from shared.jobtypes.models import parse_params
from shared.jobtypes.render import RenderParams
from shared.jobtypes.render_data import DocumentData, InvoiceData
from shared.jobtypes.resize import ResizeParams
from shared.messages import Job, decode_job, encode
from tests.support.gateway import in_process_gateway
from tests.unit.test_gateway_in_doubt import ScriptedPublisher

INVOICE: dict[str, Any] = {
    "seller": {"name": "S"},
    "buyer": {"name": "B"},
    "number": "1",
    "issue_date": "2025-01-01",
    "due_date": "2025-01-31",
    "items": [{"description": "x", "quantity": "1", "unit_price": "1.00", "vat_rate": "0.19"}],
}


def refusal(model: type, params: dict[str, Any]) -> str:
    with pytest.raises(DecodeError) as caught:
        parse_params(model, params)
    return str(caught.value)


# --- the params models, as a worker reads a job's params ---------------------------------


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"width": "16"}, "width: Input should be a valid integer"),
        ({"width": True}, "width: Input should be a valid integer"),
        ({"width": 16.0}, "width: Input should be a valid integer"),
        ({"height": "16"}, "height: Input should be a valid integer"),
        ({"width": 16, "quality": "85"}, "quality: Input should be a valid integer"),
        ({"width": 16, "fit": 1}, "fit: Input should be 'contain', 'cover' or 'exact'"),
        ({"sizes": [{"width": "16"}]}, "sizes.0.width: Input should be a valid integer"),
        ({"sizes": [{"width": False}]}, "sizes.0.width: Input should be a valid integer"),
        ({"sizes": {"width": 16}}, "sizes: Input should be a valid list"),
    ],
)
def test_resize_params_are_not_coerced(params: dict[str, Any], says: str) -> None:
    assert refusal(ResizeParams, params) == f"invalid params: {says}"


def test_resize_params_of_the_declared_types_are_accepted() -> None:
    params = parse_params(ResizeParams, {"width": 16, "quality": 90, "sizes": []})
    assert (params.width, params.quality) == (16, 90)


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"template": "document", "margin_mm": "20"}, "margin_mm: Input should be a valid number"),
        ({"template": "document", "margin_mm": True}, "margin_mm: Input should be a valid number"),
        ({"template": "document", "title": 7}, "title: Input should be a valid string"),
        ({"template": "document", "data": "x"}, "data: Input should be a valid dictionary"),
    ],
)
def test_render_params_are_not_coerced(params: dict[str, Any], says: str) -> None:
    assert refusal(RenderParams, params) == f"invalid params: {says}"


def test_a_whole_number_is_a_number_where_a_number_is_declared() -> None:
    assert parse_params(RenderParams, {"template": "document", "margin_mm": 20}).margin_mm == 20


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"to": "ann@example.org"}, "to: Input should be a valid list"),
        ({"to": [1]}, "to.0: Input should be a valid string"),
        ({"to": ["a@example.org"], "subject": 5}, "subject: Input should be a valid string"),
    ],
)
def test_mail_params_are_not_coerced(params: dict[str, Any], says: str) -> None:
    full = {"to": ["a@example.org"], "subject": "s", "text": "t", **params}
    assert refusal(MailParams, full) == f"invalid params: {says}"


@pytest.mark.parametrize(
    ("block", "says"),
    [
        ({"heading": "h", "level": "2"}, "blocks.0.level: Input should be a valid integer"),
        (
            {"images": "all", "captions": "true"},
            "blocks.0.captions: Input should be a valid boolean",
        ),
        ({"images": "all", "columns": 2.0}, "blocks.0.columns: Input should be a valid integer"),
        ({"image": 0, "width_mm": "120"}, "blocks.0.width_mm: Input should be a valid number"),
        ({"page_break": 1}, "blocks.0.page_break: Input should be a boolean"),
    ],
)
def test_template_data_is_not_coerced(block: dict[str, Any], says: str) -> None:
    assert refusal(DocumentData, {"blocks": [block]}) == f"invalid params: {says}"


def test_an_image_reference_true_is_neither_an_index_nor_a_key() -> None:
    says = refusal(DocumentData, {"blocks": [{"image": True}]})
    assert says.startswith("invalid params: blocks.0.image")


@pytest.mark.parametrize("quantity", [2, "2", "1.5", "-1"])
def test_an_invoice_quantity_is_an_integer_or_a_decimal_string(quantity: object) -> None:
    items = [{**INVOICE["items"][0], "quantity": quantity}]
    assert parse_params(InvoiceData, {**INVOICE, "items": items}).items[0].quantity == quantity


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("quantity", 1.5, 'send a quantity as an integer or a decimal string such as "1.5"'),
        ("quantity", True, "must be an integer below 10^12 or a decimal string"),
        ("quantity", 10**12, "must be an integer below 10^12 or a decimal string"),
        ("unit_price", 19.99, 'send money as a decimal string such as "19.99", not a number'),
        ("unit_price", 80, 'send money as a decimal string such as "80", not a number'),
        ("vat_rate", 0.19, 'send money as a decimal string such as "0.19", not a number'),
        ("vat_rate", "19", 'a VAT rate is a fraction from 0 to below 1: send "0.19" for 19 %'),
        ("vat_rate", "1", "a VAT rate is a fraction from 0 to below 1"),
        ("vat_rate", "-0.1", "a VAT rate is a fraction from 0 to below 1"),
    ],
)
def test_invoice_money_is_a_decimal_string(field: str, value: object, says: str) -> None:
    items = [{**INVOICE["items"][0], field: value}]
    refused = refusal(InvoiceData, {**INVOICE, "items": items})
    assert refused.startswith(f"invalid params: items.0.{field}: {says}")


# --- the job envelope ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"attempt": "2"}, "attempt: Input should be a valid integer"),
        ({"attempt": True}, "attempt: Input should be a valid integer"),
        ({"attempt": 2.0}, "attempt: Input should be a valid integer"),
        ({"inputs": "x"}, "inputs: Input should be a valid array"),
        ({"inputs": [1]}, "inputs.0: Input should be a valid string"),
        ({"params": []}, "params: Input should be an object"),
        ({"v": "1"}, "v: Input should be an integer"),
        ({"v": True}, "v: Input should be an integer"),
        ({"v": 1.0}, "v: Input should be an integer"),
        ({"submitted_at": 1700000000}, "submitted_at: Input should be a valid datetime"),
    ],
)
def test_the_job_envelope_is_not_coerced(changes: dict[str, Any], says: str) -> None:
    body = {**json.loads(encode(Job(type="resize"))), **changes}
    with pytest.raises(DecodeError) as caught:
        decode_job(json.dumps(body).encode())
    assert str(caught.value) == f"not a valid job: {says}"


def test_a_job_as_the_services_write_it_decodes_unchanged() -> None:
    job = Job(type="resize", params={"width": 16}, inputs=["inputs/x/input.png"], attempt=2)
    assert decode_job(encode(job)) == job


# --- the gateway: the same models, its form text turned into numbers first ----------------


@pytest.fixture
def http(tmp_path: Path) -> Iterator[tuple[TestClient, ScriptedPublisher]]:
    publisher = ScriptedPublisher()
    with in_process_gateway(publisher, tmp_path / "blobs") as client:
        yield client, publisher


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (9, 99, 199)).save(out, "PNG")
    return out.getvalue()


def test_a_form_width_is_text_and_becomes_an_integer_before_strict_validation(
    http: tuple[TestClient, ScriptedPublisher],
) -> None:
    client, publisher = http
    answer = client.post(
        "/jobs/resize",
        files={"file": ("a.png", png(), "image/png")},
        data={"width": "16", "quality": "80"},
    )

    assert answer.status_code == 202, answer.text
    assert publisher.jobs[-1]["params"]["width"] == 16
    assert publisher.jobs[-1]["params"]["quality"] == 80


def test_a_form_width_that_is_not_a_number_is_still_a_422(
    http: tuple[TestClient, ScriptedPublisher],
) -> None:
    client, _ = http
    answer = client.post(
        "/jobs/resize", files={"file": ("a.png", png(), "image/png")}, data={"width": "true"}
    )

    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "width"]


def invoice_job(client: TestClient, item: dict[str, Any]) -> Any:
    data = {**INVOICE, "items": [{**INVOICE["items"][0], **item}]}
    return client.post("/jobs/render", json={"template": "invoice", "data": data})


def test_an_invoice_rate_that_is_not_a_fraction_is_a_422_naming_the_field(
    http: tuple[TestClient, ScriptedPublisher],
) -> None:
    client, publisher = http
    answer = invoice_job(client, {"vat_rate": "19"})

    assert answer.status_code == 422
    [detail] = answer.json()["detail"]
    assert detail["loc"] == ["body", "data"]
    assert detail["msg"].startswith("items.0.vat_rate: a VAT rate is a fraction from 0 to below 1")
    assert publisher.jobs == []


def test_an_invoice_price_as_a_float_is_a_422_asking_for_a_decimal_string(
    http: tuple[TestClient, ScriptedPublisher],
) -> None:
    client, _ = http
    answer = invoice_job(client, {"unit_price": 19.99})

    assert answer.status_code == 422
    [detail] = answer.json()["detail"]
    assert detail["msg"] == (
        'items.0.unit_price: send money as a decimal string such as "19.99", not a number'
    )


def test_an_invoice_quantity_as_a_json_integer_is_accepted(
    http: tuple[TestClient, ScriptedPublisher],
) -> None:
    client, publisher = http
    answer = invoice_job(client, {"quantity": 2})

    assert answer.status_code == 202, answer.text
    assert publisher.jobs[-1]["params"]["data"]["items"][0]["quantity"] == 2


def test_a_json_body_is_validated_strictly_too(
    http: tuple[TestClient, ScriptedPublisher],
) -> None:
    client, _ = http
    answer = client.post(
        "/jobs/render", json={"template": "document", "data": {}, "margin_mm": "20"}
    )

    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "margin_mm"]


def test_the_openapi_schema_says_which_forms_a_field_takes(
    http: tuple[TestClient, ScriptedPublisher],
) -> None:
    client, _ = http
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    # The invoice models, as the model itself says (the document refers to them by name).
    item = InvoiceData.model_json_schema()["$defs"]["InvoiceItem"]["properties"]

    assert [form["type"] for form in item["quantity"]["anyOf"]] == ["integer", "string"]
    assert item["vat_rate"]["pattern"] == r"^0(\.\d{1,6})?$"
    assert item["unit_price"]["type"] == "string"
    assert schemas["ResizeForm"]["properties"]["width"]["anyOf"][0]["type"] == "integer"
