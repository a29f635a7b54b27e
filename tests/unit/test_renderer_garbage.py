"""A rendered document leaves no reference cycles behind for Python's rare full collections
to find: they piled up as about 2.5 MiB of RSS per 1,000 documents (benchmarks/memory.py)."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.renderer.handler import render_and_collect, render_job
from services.renderer.limits import RenderLimits
from shared.blobs import BlobStore, FolderBlobStore
from shared.messages import Job

Render = Callable[[Job, BlobStore, RenderLimits], list[str]]


@pytest.fixture
def collector_off() -> Iterator[None]:
    """Only explicit collections, so what a render leaves is counted, not collected by
    chance in the middle of it."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def cycles_left_by(render: Render, store: BlobStore) -> int:
    job = Job(type="render", params={"template": "document", "data": {"blocks": ["Hello."]}})
    (key,) = render(job, store, RenderLimits())
    assert store.read_bytes(key).startswith(b"%PDF")
    return gc.collect()


def test_the_renderers_handler_collects_what_reportlab_leaves(
    tmp_path: Path, collector_off: None
) -> None:
    store = FolderBlobStore(tmp_path)
    assert cycles_left_by(render_job, store) > 0  # reportlab does leave cycles
    assert cycles_left_by(render_and_collect, store) == 0
