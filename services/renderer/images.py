"""Input images (blob keys in the job's `inputs`) made ready to embed.

Only keys among the job's own inputs can be read (a document cannot pull in other jobs'
blobs). Pillow opens the bytes with a format allow-list and a pixel limit before any pixel
is decoded. An upright JPEG within the size cap is embedded as it is (reportlab copies JPEG
data straight into the PDF); anything else is turned upright, shrunk to the cap and
re-encoded as PNG, which keeps transparency.
"""

from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from reportlab.platypus import Image as ImageFlowable

from shared.blobs import BlobStore
from shared.errors import BlobError, PermanentJobError

ALLOWED_FORMATS = ["JPEG", "PNG", "WEBP", "GIF"]
# Longest side embedded: 300 dpi across an A4 page. Larger pictures only bloat the PDF.
MAX_EMBED_SIDE = 2480
_EMBED_AS_IS = {"RGB", "L"}


@dataclass(frozen=True)
class InputImage:
    key: str
    width: int  # pixels, upright, as embedded
    height: int
    data: bytes  # JPEG or PNG

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


def load_image(blobs: BlobStore, key: str, max_pixels: int) -> InputImage:
    try:
        raw = blobs.read_bytes(key)
    except BlobError as e:
        raise PermanentJobError(f"cannot read input {key!r}: {e}", kind="invalid_input") from e
    with _bad_image_is_permanent(key), Image.open(io.BytesIO(raw), formats=ALLOWED_FORMATS) as im:
        width, height = im.size
        if width * height > max_pixels:
            raise PermanentJobError(
                f"input {key!r} is {width}x{height} pixels, over the limit of "
                f"{max_pixels} pixels (MAX_IMAGE_PIXELS)",
                kind="limit_exceeded",
            )
        if im.format == "JPEG" and _embeddable_as_is(im):
            im.load()  # decode once anyway: a truncated file must fail here, not in a viewer
            return InputImage(key, width, height, raw)
        return _reencoded(key, im)


def _embeddable_as_is(im: Image.Image) -> bool:
    orientation = im.getexif().get(ExifTags.Base.Orientation, 1)
    return im.mode in _EMBED_AS_IS and orientation == 1 and max(im.size) <= MAX_EMBED_SIDE


def _reencoded(key: str, im: Image.Image) -> InputImage:
    im.draft("RGB", (MAX_EMBED_SIDE, MAX_EMBED_SIDE))  # JPEG only: decode at a reduced scale
    upright = ImageOps.exif_transpose(im)
    upright.thumbnail((MAX_EMBED_SIDE, MAX_EMBED_SIDE))
    mode = "RGBA" if upright.has_transparency_data else "RGB"
    out = upright.convert(mode)
    buffer = io.BytesIO()
    out.save(buffer, format="PNG", compress_level=1)  # reportlab recompresses anyway
    return InputImage(key, out.width, out.height, buffer.getvalue())


def image_flowable(
    image: InputImage, max_width: float, max_height: float, *, enlarge: bool = False
) -> ImageFlowable:
    """The image at 1 pixel = 1 point (72 dpi: a 300-pixel thumbnail prints about 10 cm wide),
    shrunk to fit `max_width` x `max_height` points; enlarged to fit only if asked."""
    scale = min(max_width / image.width, max_height / image.height)
    if not enlarge:
        scale = min(1.0, scale)
    return ImageFlowable(
        io.BytesIO(image.data), width=image.width * scale, height=image.height * scale
    )


@contextmanager
def _bad_image_is_permanent(key: str) -> Iterator[None]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise PermanentJobError(f"input {key!r} is too large: {e}", kind="limit_exceeded") from e
    except UnidentifiedImageError as e:
        raise PermanentJobError(
            f"input {key!r} is not a supported image (JPEG, PNG, WebP, GIF)", kind="invalid_input"
        ) from e
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as e:
        raise PermanentJobError(
            f"input {key!r} is truncated or corrupt: {e}", kind="invalid_input"
        ) from e
