"""Path traversal in every name a job can carry (corpus/names/, one hostile name per file:
`../../x`, absolute paths, NUL bytes, a final newline, backslashes, percent-encoding, `..`,
5000 characters).

Names: input blob keys (of resize, render and mail jobs), attachment job ids, the document
template's image references, output names (the invoice number becomes the file name), the
upload's file name, and the result file name in `GET /jobs/{id}/result/{name}`. Each is
refused with a clear error or made harmless, and the file census in conftest finds nothing
written outside the blob store (every name carries a token it searches for).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import pytest

from shared.blobs import validate_key
from shared.errors import BlobError
from shared.messages import Job
from tests.security.conftest import TRAVERSAL_TOKEN, Suite, corpus_files, small_png
from tests.support.broker import EventWatcher

FILES = corpus_files("names")
INVOICE = {
    "seller": {"name": "Seller"},
    "buyer": {"name": "Buyer"},
    "items": [{"description": "x", "quantity": "1", "unit_price": "1.00"}],
    "issue_date": "2025-01-01",
    "due_date": "2025-01-31",
}


def _name(path: Path) -> str:
    return path.read_bytes().decode()


def test_every_name_carries_the_token() -> None:
    assert FILES
    assert all(TRAVERSAL_TOKEN in _name(p) or _name(p) == ".." for p in FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_no_blob_key_made_of_it_is_valid(path: Path) -> None:
    name = _name(path)
    for key in (name, f"inputs/0b9f3f8e-5c1a-4b1e-9d0a-6c3b2a1f0e9d/{name}"):
        with pytest.raises(BlobError):
            validate_key(key)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_workers_refuse_it_as_a_name_from_the_queue(
    suite: Suite, events: EventWatcher, path: Path
) -> None:
    name = _name(path)
    good_input = suite.job_with_input("render", {}, small_png(), "photo.png").inputs
    document = {"template": "document", "data": {"blocks": [{"image": name}]}}
    contact_sheet = {"template": "document", "data": {}}
    mail = {"to": ["ann@example.org"], "subject": "s", "text": "t"}
    cases = [
        (Job(type="resize", params={"width": 16}, inputs=[name]), "invalid blob key"),
        (Job(type="render", params=contact_sheet, inputs=[name]), "invalid blob key"),
        # (5000 characters are over the schema's length first)
        (Job(type="render", params=document, inputs=good_input), "this job's inputs|data.blocks"),
        (Job(type="mail", params=mail, inputs=[name]), "invalid blob key"),
        (Job(type="mail", params={**mail, "attachments": [name]}), "is not a job id"),
    ]
    outcomes = suite.publish_with_good_jobs(events, [job for job, _ in cases])
    for (job, says), event in zip(cases, outcomes, strict=True):
        assert event["event"] == "job.failed", (job.type, event)
        assert re.search(says, event["error"]["message"]), (job.type, event["error"])
    suite.check_after_case()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_the_gateway_keeps_it_out_of_every_file_name(
    suite: Suite, events: EventWatcher, path: Path
) -> None:
    name = _name(path)
    # The upload's own file name is never used: the input is stored as input.<format>.
    upload = suite.http.post(
        "/jobs/resize", files={"file": (name, small_png())}, data={"width": "8"}
    )
    if len(name) > 1000:  # python-multipart refuses a header line that long
        assert upload.status_code == 400, upload.text
        assert "multipart" in upload.json()["detail"]
    else:
        assert upload.status_code == 202, upload.text
        job_id = upload.json()["id"]
        assert suite.blobs.list(f"inputs/{job_id}") == [f"inputs/{job_id}/input.png"]
        suite.succeeded(events, job_id)
        # Nor can it name an output of a finished job (dots encoded too: a client that
        # resolved `..` itself would never send it).
        encoded = quote(name, safe="").replace(".", "%2E")
        result = suite.http.get(f"/jobs/{job_id}/result/{encoded}")
        assert result.status_code == 404, result.text

    # The invoice number becomes the output's file name: made safe, inside outputs/<id>/.
    invoice = suite.http.post(
        "/jobs/render", json={"template": "invoice", "data": {**INVOICE, "number": name}}
    )
    if len(name) > 64:
        assert invoice.status_code == 422, invoice.text
        assert "number" in str(invoice.json()["detail"])
    else:
        assert invoice.status_code == 202, invoice.text
        event = suite.succeeded(events, invoice.json()["id"])
        (key,) = event["outputs"]
        assert key.startswith(f"outputs/{invoice.json()['id']}/invoice")
        blob_dir = suite.settings.blob_dir
        assert (blob_dir / validate_key(key)).resolve().is_relative_to(blob_dir.resolve())
    suite.check_after_case()
