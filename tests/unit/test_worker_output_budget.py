"""MAX_OUTPUT_BYTES: a job's outputs together stay within it, or the job fails for good and
leaves neither outputs nor a manifest. Real handlers, real pixels, a real folder store."""

from __future__ import annotations

import io
from functools import partial
from pathlib import Path

import pytest
from PIL import Image

from services.resizer.handler import resize_job
from shared.blobs import BlobStore, FolderBlobStore, input_key, output_key
from shared.blobs.keys import Manifest
from shared.config import Settings
from shared.errors import PermanentJobError
from shared.jobtypes.resize import ResizeLimits
from shared.messages import Job
from shared.worker.output_budget import BudgetedBlobs, OutputLimitExceeded
from shared.worker.perform import run_handler_once
from tests.unit import images

RESIZE = partial(
    resize_job, limits=ResizeLimits(max_image_pixels=50_000_000, max_output_side=10_000)
)


@pytest.fixture
def store(tmp_path: Path) -> FolderBlobStore:
    return FolderBlobStore(tmp_path / "blobs")


def resize_job_of(store: FolderBlobStore, sizes: list[int]) -> Job:
    job = Job(type="resize", params={"sizes": [{"width": w} for w in sizes], "format": "png"})
    data = images.encode(images.photo((400, 300)), "PNG")
    return job.model_copy(update={"inputs": [store.write_bytes(input_key(job.id, "in.png"), data)]})


def test_the_default_budget_is_256_mib() -> None:
    assert Settings().max_output_bytes == 256 * 1024 * 1024


def test_outputs_within_the_budget_are_written_and_recorded(store: FolderBlobStore) -> None:
    job = resize_job_of(store, [100, 200, 300])

    outputs = run_handler_once(job, RESIZE, store, 10_000_000)

    assert len(outputs) == 3
    assert store.read_manifest(job.id) == Manifest(outputs)


def test_a_job_over_its_budget_fails_for_good_and_leaves_nothing(
    store: FolderBlobStore, tmp_path: Path
) -> None:
    # What the outputs weigh, measured in a store of their own: the third goes over.
    measure = FolderBlobStore(tmp_path / "measure")
    weights = [measure.size(k) for k in RESIZE(resize_job_of(measure, [100, 200, 300]), measure)]
    budget = weights[0] + weights[1] + weights[2] // 2
    job = resize_job_of(store, [100, 200, 300])

    with pytest.raises(OutputLimitExceeded) as caught:
        run_handler_once(job, RESIZE, store, budget)

    assert isinstance(caught.value, PermanentJobError)
    assert caught.value.kind == "limit_exceeded"
    assert f"over {budget} bytes (MAX_OUTPUT_BYTES)" in str(caught.value)
    assert store.list(f"outputs/{job.id}") == []
    assert store.read_manifest(job.id) is None


def test_a_whole_blob_over_the_budget_is_refused_before_it_is_written(
    store: FolderBlobStore,
) -> None:
    def render(job: Job, blobs: BlobStore) -> list[str]:
        return [blobs.write_bytes(output_key(job.id, "doc.pdf"), bytes(2_000))]

    job = Job(type="render")
    with pytest.raises(OutputLimitExceeded):
        run_handler_once(job, render, store, 1_999)
    assert store.list(f"outputs/{job.id}") == []

    assert run_handler_once(job, render, store, 2_000) == [output_key(job.id, "doc.pdf")]


def test_a_writer_that_seeks_back_pays_for_the_furthest_byte_once(store: FolderBlobStore) -> None:
    budget = BudgetedBlobs(store, 100)
    with budget.open_write(output_key("a" * 8, "x.bin")) as f:
        f.write(bytes(60))
        f.seek(0)
        f.write(bytes(60))  # patching the start: no new bytes
        f.write(bytes(30))
    assert budget.written == 90


def test_an_encoder_gets_no_file_descriptor_to_write_past_the_count(
    store: FolderBlobStore,
) -> None:
    budget = BudgetedBlobs(store, 1_000)
    key = output_key("b" * 8, "big.png")
    with pytest.raises(OutputLimitExceeded), budget.open_write(key) as f:
        with pytest.raises(io.UnsupportedOperation):
            f.fileno()
        Image.effect_noise((200, 200), 64).save(f, "PNG")  # ~40 KB of noise
    assert not store.exists(key)


def test_a_staged_blob_is_charged_to_the_budget_before_it_is_staged(
    store: FolderBlobStore,
) -> None:
    budget = BudgetedBlobs(store, 10)
    budget.stage_bytes(output_key("j1", "a.bin"), bytes(6)).commit()
    with pytest.raises(OutputLimitExceeded):
        budget.stage_bytes(output_key("j1", "b.bin"), bytes(5))
    assert store.list("outputs/j1") == [output_key("j1", "a.bin")] and budget.written == 6
