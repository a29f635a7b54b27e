"""Running the render handler in-process on a real folder blob store (unit tests)."""

from __future__ import annotations

from typing import Any

import pytest
from pypdf import PdfReader

from services.renderer.handler import render_job
from services.renderer.limits import RenderLimits
from shared.blobs import FolderBlobStore, input_key
from shared.errors import PermanentJobError
from shared.messages import Job
from tests.support.pdfs import open_pdf

LIMITS = RenderLimits()


def render_job_with(
    store: FolderBlobStore, params: dict[str, Any], inputs: list[tuple[str, bytes]] | None = None
) -> Job:
    """A render job whose inputs (name, bytes) are already in the blob store."""
    job = Job(type="render", params=params)
    keys = [store.write_bytes(input_key(job.id, name), data) for name, data in inputs or []]
    return job.model_copy(update={"inputs": keys})


def run(store: FolderBlobStore, job: Job, limits: RenderLimits = LIMITS) -> tuple[str, PdfReader]:
    (key,) = render_job(job, store, limits)
    return key, open_pdf(store.read_bytes(key))


def render(
    store: FolderBlobStore,
    params: dict[str, Any],
    inputs: list[tuple[str, bytes]] | None = None,
    limits: RenderLimits = LIMITS,
) -> tuple[str, PdfReader]:
    """Run one job; return its single output key and the PDF opened with pypdf."""
    return run(store, render_job_with(store, params, inputs), limits)


def rejected(
    store: FolderBlobStore,
    params: dict[str, Any],
    inputs: list[tuple[str, bytes]] | None = None,
    limits: RenderLimits = LIMITS,
) -> PermanentJobError:
    """Run a job that must fail for good, leaving no output behind; return the error."""
    job = render_job_with(store, params, inputs)
    with pytest.raises(PermanentJobError) as caught:
        render_job(job, store, limits)
    assert store.list(f"outputs/{job.id}") == []
    return caught.value
