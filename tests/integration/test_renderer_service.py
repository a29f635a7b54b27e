"""The renderer as a real process on the real broker: jobs in, PDFs and events out."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from shared.config import Settings
from shared.ids import follow_up_id
from shared.messages import FollowUp, Job
from tests.conftest import SpawnFn
from tests.support.broker import TestBroker
from tests.support.pdfs import flat_text, image_xobjects, open_pdf

INVOICE = {
    "seller": {"name": "Seller AG", "address": "Bahnhofstrasse 1, Zürich"},
    "buyer": {"name": "Buyer Ltd"},
    "items": [
        {"description": "Widget", "quantity": "3", "unit_price": "19.99", "vat_rate": "0.19"},
        {"description": "Book", "quantity": "2", "unit_price": "12.345", "vat_rate": "0.07"},
        {"description": "Support", "quantity": "1.5", "unit_price": "80", "vat_rate": "0.19"},
    ],
    "currency": "CHF",
    "number": "INV/7",
    "issue_date": "2025-07-01",
    "due_date": "2025-07-31",
}


def test_a_render_job_on_the_queue_becomes_a_pdf_and_a_succeeded_event(
    spawn: SpawnFn, broker: TestBroker, settings: Settings
) -> None:
    events = broker.events()
    renderer = spawn("services.renderer")
    renderer.wait_logged("consuming")

    job = Job(type="render", params={"template": "invoice", "data": INVOICE, "author": "Ops"})
    broker.publish_job(job)
    done = events.wait_for(job.id, "job.succeeded")[0]

    assert done["service"] == "renderer"
    assert done["outputs"] == [f"outputs/{job.id}/invoice-INV-7.pdf"]
    pdf = open_pdf((settings.blob_dir / done["outputs"][0]).read_bytes())
    assert "Total due 240.58 CHF" in flat_text(pdf)
    assert pdf.metadata is not None and pdf.metadata.author == "Ops"


def test_bad_template_data_fails_is_dead_lettered_and_the_renderer_goes_on(
    spawn: SpawnFn, broker: TestBroker, settings: Settings
) -> None:
    events = broker.events()
    renderer = spawn("services.renderer")
    renderer.wait_logged("consuming")

    bad = Job(type="render", params={"template": "invoice", "data": {**INVOICE, "items": []}})
    broker.publish_job(bad)
    failed = events.wait_for(bad.id, "job.failed")[0]

    assert failed["error"]["kind"] == "invalid_data"
    assert "data.items: List should have at least 1 item" in failed["error"]["message"]
    broker.wait_until(lambda: broker.depth(broker.names.dead_queue) == 1, 5, "one dead letter")
    assert not events.of(bad.id, "job.retrying")
    assert not (settings.blob_dir / "outputs" / bad.id).exists()

    good = Job(type="render", params={"template": "document", "data": {"blocks": ["still here"]}})
    broker.publish_job(good)
    done = events.wait_for(good.id, "job.succeeded")[0]
    assert "still here" in flat_text(
        open_pdf((settings.blob_dir / done["outputs"][0]).read_bytes())
    )
    assert renderer.proc.poll() is None


def test_resize_then_contact_sheet_then_mail_in_one_submission(
    spawn: SpawnFn, broker: TestBroker, settings: Settings, tmp_path: Path
) -> None:
    events = broker.events()
    resizer, renderer = spawn("services.resizer"), spawn("services.renderer")
    resizer.wait_logged("consuming")
    renderer.wait_logged("consuming")
    photo = Image.linear_gradient("L").resize((900, 600)).convert("RGB")
    resize = Job(
        type="resize",
        params={"sizes": [{"width": 300}, {"width": 150}, {"width": 80, "height": 80}]},
        then=FollowUp(
            type="render",
            params={"template": "document", "data": {"title": "Your thumbnails"}},
            then=FollowUp(
                type="mail", params={"to": ["a@example.org"], "subject": "x", "text": "x"}
            ),
        ),
    )
    key = f"inputs/{resize.id}/photo.jpg"
    (settings.blob_dir / key).parent.mkdir(parents=True)
    photo.save(settings.blob_dir / key, "JPEG")
    broker.publish_job(resize.model_copy(update={"inputs": [key]}))

    render_id = follow_up_id(resize.id)
    done = events.wait_for(render_id, "job.succeeded")[0]

    (pdf_key,) = done["outputs"]
    pdf = open_pdf((settings.blob_dir / pdf_key).read_bytes())
    assert image_xobjects(pdf) == 3
    text = flat_text(pdf)
    assert "Your thumbnails" in text
    assert "300x200.jpg" in text and "80x53.jpg" in text  # contain: 80x80 box, 3:2 photo
    mail_queue = broker.names.task_queue("mail")
    broker.wait_until(lambda: broker.depth(mail_queue) == 1, 5, "the follow-up mail job")
    mail = json.loads(broker.drain(mail_queue)[0][1])
    assert mail["inputs"] == [pdf_key]
    assert mail["parent_id"] == render_id
