"""The resize job: one input image in, one output per requested size out.

Pure: no broker, no logging set-up. Bad input of any kind raises PermanentJobError with a
message a person can act on; the runner decides what happens to the message.
"""

from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from services.resizer import imaging
from services.resizer.imaging import OutputFormat, Target
from shared.blobs import BlobStore, output_key
from shared.errors import BlobError, DecodeError, PermanentJobError
from shared.jobtypes import RESIZE, ParamsRefused
from shared.jobtypes.models import parse_params
from shared.jobtypes.resize import ResizeLimits, ResizeParams
from shared.messages import Job

# An allow-list: every other Pillow plugin stays out of reach of untrusted bytes.
ALLOWED_FORMATS = ["JPEG", "PNG", "WEBP", "GIF"]
UNSUPPORTED = "input is not a supported image (JPEG, PNG, WebP, GIF)"
# EXIF orientations 5-8 turn the picture a quarter: stored width is displayed height.
_QUARTER_TURNS = {5, 6, 7, 8}


@dataclass(frozen=True)
class _Decoded:
    image: Image.Image  # upright, in L, LA, RGB or RGBA
    source_format: str | None
    icc: bytes | None
    targets: list[Target]


def resize_job(job: Job, blobs: BlobStore, limits: ResizeLimits) -> list[str]:
    """Read job.inputs[0] from the blob store, write one output per requested size under
    outputs/<job.id>/, return the output keys in the order of params.boxes()."""
    params = _parse(job)
    try:
        RESIZE.check(params, limits)
    except ParamsRefused as e:
        raise PermanentJobError(f"invalid params: {e}", kind="invalid_params") from e
    data = _read_input(job, blobs)
    decoded = _decode(data, params, limits)
    fmt = params.format or imaging.default_format(decoded.source_format)
    keys: list[str] = []
    for target in decoded.targets:
        key = output_key(job.id, target.file_name(fmt))
        if key in keys:  # same pixel size, same fit: the same picture, written once
            continue
        _write(blobs, key, decoded, target, fmt, params.quality)
        keys.append(key)
    return keys


def _parse(job: Job) -> ResizeParams:
    try:
        return parse_params(ResizeParams, job.params)
    except DecodeError as e:
        raise PermanentJobError(str(e), kind="invalid_params") from e


def _read_input(job: Job, blobs: BlobStore) -> bytes:
    if len(job.inputs) != 1:
        raise PermanentJobError(
            f"a resize job takes exactly one input, got {len(job.inputs)}", kind="invalid_input"
        )
    try:
        data = blobs.read_bytes(job.inputs[0])
    except BlobError as e:
        raise PermanentJobError(f"cannot read the input: {e}", kind="invalid_input") from e
    if not data:
        raise PermanentJobError("input file is empty", kind="invalid_input")
    return data


def _decode(data: bytes, params: ResizeParams, limits: ResizeLimits) -> _Decoded:
    """Decode once, as small as the largest output allows, checking limits before any pixel."""
    with _bad_input_is_permanent():
        im = Image.open(_StrictReader(data), formats=ALLOWED_FORMATS)
        _check_pixels(im.size, limits)
        source_format = im.format
        quarter_turn = _orientation(im) in _QUARTER_TURNS
        upright = _turned(im.size) if quarter_turn else im.size
        targets = [
            imaging.plan_target(upright, box.width, box.height, params.fit)
            for box in params.boxes()
        ]
        _check_sides(targets, limits)
        need = imaging.needed_source(upright, targets)
        # Only JPEG implements draft (elsewhere a no-op): libjpeg decodes at 1/2, 1/4 or 1/8
        # scale, never below what it is asked for: twice `need`, so LANCZOS always follows.
        # It must come before load(), so before exif_transpose.
        request = imaging.draft_size(need)
        im.draft(im.mode, _turned(request) if quarter_turn else request)
        im.load()
        icc = im.info.get("icc_profile")
        ImageOps.exif_transpose(im, in_place=True)  # in place: no copy of the whole image
        image, icc = imaging.bounded_icc(imaging.normalise_mode(im), icc)
        return _Decoded(image, source_format, icc, targets)


def _turned(size: tuple[int, int]) -> tuple[int, int]:
    return size[1], size[0]


def _orientation(im: Image.Image) -> int:
    value = im.getexif().get(ExifTags.Base.Orientation, 1)
    return value if isinstance(value, int) else 1


def _check_pixels(size: tuple[int, int], limits: ResizeLimits) -> None:
    width, height = size
    pixels = width * height
    if pixels > limits.max_image_pixels:
        raise PermanentJobError(
            f"input image is {width}x{height} = {pixels} pixels, "
            f"over the limit of {limits.max_image_pixels} pixels",
            kind="limit_exceeded",
        )


def _check_sides(targets: list[Target], limits: ResizeLimits) -> None:
    for target in targets:
        if max(target.size) > limits.max_output_side:
            raise PermanentJobError(
                f"output size {target.width}x{target.height} is absurd: "
                f"a side may be at most {limits.max_output_side} pixels",
                kind="limit_exceeded",
            )
        # Two sides within the limit can still make an output larger than any input may be
        # (a 1x1 GIF stretched to 10000x10000 is 300 MB of pixels).
        if target.width * target.height > limits.max_image_pixels:
            raise PermanentJobError(
                f"output size {target.width}x{target.height} is absurd: at most "
                f"{limits.max_image_pixels} pixels in one output (MAX_IMAGE_PIXELS)",
                kind="limit_exceeded",
            )


def _write(
    blobs: BlobStore,
    key: str,
    decoded: _Decoded,
    target: Target,
    fmt: OutputFormat,
    quality: int,
) -> None:
    out = imaging.render(decoded.image, target, fmt)
    icc = imaging.icc_for(out.mode, decoded.icc)
    with blobs.open_write(key) as f:  # atomic: a crash leaves no half file under `key`
        imaging.save(out, f, fmt, quality, icc)


@contextmanager
def _bad_input_is_permanent() -> Iterator[None]:
    """Turn each way Pillow rejects bad bytes into a PermanentJobError with a clear message."""
    try:
        # Pillow only warns between its own limit and twice that: make it an error too.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise PermanentJobError(f"input image is too large: {e}", kind="limit_exceeded") from e
    except UnidentifiedImageError as e:  # before OSError, its base class
        raise PermanentJobError(UNSUPPORTED, kind="invalid_input") from e
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as e:
        raise PermanentJobError(
            f"input image is truncated or corrupt: {e}", kind="invalid_input"
        ) from e


class _StrictReader(io.BytesIO):
    """Bytes whose end is an error: a decoder that asks for more data met a truncated file.

    Pillow would otherwise pad a truncated image with grey whenever anything in the process
    has set the global ImageFile.LOAD_TRUNCATED_IMAGES; this does not depend on it.
    """

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self._end = len(data)  # not getbuffer(): that would copy the shared bytes

    def read(self, size: int | None = -1, /) -> bytes:
        if size != 0 and self.tell() >= self._end:
            raise OSError("unexpected end of data")
        return super().read(size)
