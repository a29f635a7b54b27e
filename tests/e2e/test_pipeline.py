"""resize → render → mail as one submission, across real processes: thumbnails, a contact
sheet PDF of them, and a mail with that PDF attached, in the real sink."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from shared.blobs import FolderBlobStore, input_key
from shared.config import Settings
from shared.messages import Job
from tests.conftest import SpawnFn
from tests.support.broker import TestBroker
from tests.support.mailsink import start_mailsink
from tests.support.pdfs import image_xobjects, open_pdf, text_of


def test_resize_then_render_then_mail_delivers_a_contact_sheet(
    spawn: SpawnFn, broker: TestBroker, settings: Settings, tmp_path: Path
) -> None:
    events = broker.events()
    sink = start_mailsink(spawn, tmp_path / "mail")
    workers = [
        spawn("services.resizer"),
        spawn("services.renderer"),
        spawn("services.mailer", **sink.env()),
    ]
    for worker in workers:
        worker.wait_logged("consuming")

    blobs = FolderBlobStore(settings.blob_dir)
    job = Job(
        type="resize",
        params={"sizes": [{"width": 320}, {"width": 160}, {"width": 80}], "format": "png"},
        then={
            "type": "render",
            "params": {"template": "document", "title": "Contact sheet"},
            "then": {
                "type": "mail",
                "params": {
                    "to": ["Ada <ada@example.com>"],
                    "subject": "Your thumbnails",
                    "text": "The contact sheet is attached.",
                },
            },
        },
    )
    key = input_key(job.id, "photo.jpg")
    with blobs.open_write(key) as f:
        Image.radial_gradient("L").resize((1200, 900)).convert("RGB").save(f, "JPEG")
    broker.publish_job(job.model_copy(update={"inputs": [key]}))

    render_job = job.follow_up([])
    assert render_job is not None
    mail_job = render_job.follow_up([])
    assert mail_job is not None
    for step in (job, render_job, mail_job):
        events.wait_for(step.id, "job.succeeded", timeout=60)

    (message,) = sink.wait_for_messages(1)
    detail = sink.message(message["id"])
    assert detail["subject"] == "Your thumbnails"
    (attachment,) = detail["attachments"]
    assert attachment["content_type"] == "application/pdf"
    pdf_name = attachment["name"]
    pdf = open_pdf(sink.attachment(message["id"], pdf_name).content)
    assert "Contact sheet" in text_of(pdf)
    assert image_xobjects(pdf) == 3
    # Each step knows its parent: the audit trail links the whole pipeline.
    assert events.of(mail_job.id, "job.succeeded")[0]["parent_id"] == render_job.id
