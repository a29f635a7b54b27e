"""Output quality of the resize handler on real, detailed images, against a careful reference:
the whole source decoded and resampled with LANCZOS in one step.

The JPEG draft (libjpeg's scaled decode) and Pillow's reduce() are cheap box filters; these
tests pin that the speed they buy costs no visible quality. Thresholds sit a little under what
the code gives and well over what a draft landing right on the output size gave (~37-39 dB).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from services.resizer import imaging
from services.resizer.handler import resize_job
from shared.blobs import FolderBlobStore, input_key
from shared.jobtypes.resize import ResizeLimits
from shared.messages import Job
from tests.unit import images

LIMITS = ResizeLimits(max_image_pixels=50_000_000, max_output_side=10_000)


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return images.detailed_photo((4000, 3000))


@pytest.fixture(scope="module")
def big_png(photo: Image.Image) -> bytes:
    png = images.stored_png(photo)
    assert Image.open(io.BytesIO(png)).format == "PNG"
    return png


@pytest.fixture(scope="module")
def jpeg(photo: Image.Image) -> bytes:
    return images.encode(photo.crop((0, 0, 3000, 2000)), "JPEG", quality=95)


@pytest.fixture(scope="module")
def jpeg_decoded(jpeg: bytes) -> Image.Image:
    with Image.open(io.BytesIO(jpeg)) as im:
        return im.convert("RGB")


@pytest.fixture
def store(tmp_path: Path) -> FolderBlobStore:
    return FolderBlobStore(tmp_path / "blobs")


def resized(store: FolderBlobStore, data: bytes, width: int) -> Image.Image:
    """The real handler, input bytes to a lossless PNG output, reopened."""
    job = Job(type="resize", params={"width": width, "format": "png"})
    job = job.model_copy(update={"inputs": [store.write_bytes(input_key(job.id, "in"), data)]})
    [key] = resize_job(job, store, LIMITS)
    out = Image.open(io.BytesIO(store.read_bytes(key)))
    out.load()
    return out


def reference(decoded: Image.Image, size: tuple[int, int]) -> Image.Image:
    """From the full decode, one LANCZOS resample with no shortcut."""
    return decoded.resize(size, Image.Resampling.LANCZOS)


def psnr(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    mse = sum(ImageStat.Stat(diff).sum2) / (a.size[0] * a.size[1] * 3)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def test_draft_asks_for_twice_the_needed_size() -> None:
    assert imaging.draft_size((800, 600)) == (1600, 1200)
    assert imaging.draft_size((1, 1)) == (2, 2)


# 1500 and 750 are exactly 1/2 and 1/4 of 3000: where a draft for the output size itself
# would land right on it and leave LANCZOS nothing to do.
@pytest.mark.parametrize(("width", "at_least"), [(1500, 50.0), (750, 43.0)])
def test_jpeg_to_png_keeps_the_detail_of_a_full_decode(
    store: FolderBlobStore, jpeg: bytes, jpeg_decoded: Image.Image, width: int, at_least: float
) -> None:
    out = resized(store, jpeg, width)
    assert out.size == (width, width * 2 // 3)
    assert psnr(out, reference(jpeg_decoded, out.size)) >= at_least


def test_big_png_to_small_png_loses_nothing_visible_to_the_reducing_gap(
    store: FolderBlobStore, photo: Image.Image, big_png: bytes
) -> None:
    out = resized(store, big_png, 800)
    assert out.size == (800, 600)
    # PNG is lossless: the photo is what a full decode gives. pyvips thumbnail: ~50 dB.
    assert psnr(out, reference(photo, out.size)) >= 48.0
