"""Pure image helpers for the resizer: output geometry, pixel modes, encoding.

Nothing here knows about jobs, blobs or errors; `handler.py` glues these to a job.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import IO, Literal

from PIL import Image

from services.resizer.resample import resample

try:
    from PIL import ImageCms
except ImportError:  # a Pillow built without LittleCMS: large profiles are only dropped
    ImageCms = None  # type: ignore[assignment]

Fit = Literal["contain", "cover", "exact"]
OutputFormat = Literal["jpeg", "png", "webp"]

EXTENSIONS: dict[str, str] = {"jpeg": "jpg", "png": "png", "webp": "webp"}
_PIL_FORMATS: dict[str, str] = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
# MPO is what Pillow calls a JPEG that carries extra pictures (many phone cameras).
_DEFAULT_FORMATS: dict[str, OutputFormat] = {
    "JPEG": "jpeg",
    "MPO": "jpeg",
    "PNG": "png",
    "WEBP": "webp",
}
# resize() first box-reduces (reduce()) by a whole factor, staying at least twice the output,
# then LANCZOS. Measured on a detailed 4000x3000 PNG to 800 px: 190 -> 80 ms for the resample
# at 3.0 -> 2.0, ~51 dB PSNR against a plain LANCZOS (pyvips thumbnail: ~50 dB).
REDUCING_GAP = 2.0
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


@dataclass(frozen=True)
class Target:
    """One output: its pixel size, and whether the source is centre-cropped to its aspect."""

    width: int
    height: int
    crop: bool = False

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def file_name(self, fmt: OutputFormat) -> str:
        return f"{self.width}x{self.height}.{EXTENSIONS[fmt]}"


def default_format(source_format: str | None) -> OutputFormat:
    """The output format when the job names none: the input's own, else PNG (e.g. GIF)."""
    return _DEFAULT_FORMATS.get(source_format or "", "png")


# --- geometry ---------------------------------------------------------------------------


def plan_target(source: tuple[int, int], width: int | None, height: int | None, fit: Fit) -> Target:
    """The output for one requested box, given the (upright) source size."""
    src_w, src_h = source
    if width is not None and height is not None:
        if fit == "exact":
            return Target(width, height)
        if fit == "cover":
            return Target(width, height, crop=True)
        # contain: the side that binds keeps the box's size, the other follows the aspect
        if width * src_h <= height * src_w:
            return Target(width, _scale(src_h, width, src_w))
        return Target(_scale(src_w, height, src_h), height)
    # One side only: every fit keeps the aspect ratio.
    if width is not None:
        return Target(width, _scale(src_h, width, src_w))
    assert height is not None  # Size guarantees at least one side
    return Target(_scale(src_w, height, src_h), height)


def _scale(side: int, new: int, old: int) -> int:
    """`side * new / old` rounded half up, in integers (exact for any size), never 0."""
    return max(1, (2 * side * new + old) // (2 * old))


def needed_source(source: tuple[int, int], targets: list[Target]) -> tuple[int, int]:
    """The smallest source size that still gives every target full detail."""
    need_w, need_h = 1, 1
    for target in targets:
        w, h = _needed_for(source, target)
        need_w, need_h = max(need_w, w), max(need_h, h)
    return need_w, need_h


def draft_size(need: tuple[int, int]) -> tuple[int, int]:
    """The size to ask JPEG `draft` for: twice what the outputs need.

    libjpeg's scaled decode (1/2, 1/4, 1/8) is fast but no careful resample: when its scale
    lands right on the output size no LANCZOS step follows and detail is lost (a 2000 px PNG
    from a 4000 px JPEG: ~37-41 dB PSNR against a full decode + LANCZOS). Decoding at least
    twice the output keeps a LANCZOS reduction after it, and most of the speed-up.
    """
    return 2 * need[0], 2 * need[1]


def _needed_for(source: tuple[int, int], target: Target) -> tuple[int, int]:
    if not target.crop:
        return target.size
    # cover scales the whole source until it covers the box, then crops: all of it is needed
    src_w, src_h = source
    if target.width * src_h >= target.height * src_w:
        return target.width, _ceil_div(src_h * target.width, src_w)
    return _ceil_div(src_w * target.height, src_h), target.height


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def source_box(source: tuple[int, int], target: Target) -> tuple[float, float, float, float]:
    """The region of the source to resample into `target`: all of it, or the centre for cover."""
    src_w, src_h = source
    if not target.crop:
        return 0.0, 0.0, float(src_w), float(src_h)
    scale = max(target.width / src_w, target.height / src_h)
    # min(): float rounding must never push the box outside the image
    crop_w, crop_h = min(src_w, target.width / scale), min(src_h, target.height / scale)
    left, top = (src_w - crop_w) / 2, (src_h - crop_h) / 2
    return left, top, left + crop_w, top + crop_h


# --- pixels -----------------------------------------------------------------------------


def normalise_mode(im: Image.Image) -> Image.Image:
    """Bring any decoded mode to L, LA, RGB or RGBA, which resample and save everywhere."""
    mode = im.mode
    if mode in ("L", "RGB") and "transparency" in im.info:
        return im.convert(mode[0] + "A")  # a PNG colour key becomes real alpha
    if mode in ("L", "LA", "RGB", "RGBA"):
        return im
    if mode == "1":
        return im.convert("L")
    if mode in _SIXTEEN_BIT_MODES:
        # convert("L") would clip at 255 (all but black turns white): scale 16 bits to 8
        return im.convert("I").point(lambda v: v / 256).convert("L")
    if mode == "F":
        return im.convert("L")
    # P (resampled as RGB, not nearest-neighbour), CMYK, YCbCr and the rest
    return im.convert("RGBA" if im.has_transparency_data else "RGB")


def render(im: Image.Image, target: Target, fmt: OutputFormat) -> Image.Image:
    """Resample `im` (already in a normalised mode) into one output image, metadata-free."""
    out = resample(im, target.size, source_box(im.size, target), REDUCING_GAP)
    out = _output_mode(out, fmt)
    # Encoders fall back to im.info for comments, ICC and transparency: start clean.
    out.info = {}
    return out


def _output_mode(im: Image.Image, fmt: OutputFormat) -> Image.Image:
    if fmt == "jpeg" and im.mode in ("LA", "RGBA"):
        return _flatten_on_white(im)
    if fmt == "webp" and im.mode in ("L", "LA"):
        return im.convert("RGBA" if im.mode == "LA" else "RGB")
    return im


def _flatten_on_white(im: Image.Image) -> Image.Image:
    """JPEG has no alpha: what was transparent shows as white, not as black."""
    base = "L" if im.mode == "LA" else "RGB"
    flat = Image.new(base, im.size, "white")
    flat.paste(im.convert(base), mask=im.getchannel("A"))
    return flat


# The profile of an RGB or grey colour space (sRGB 3 KB, Display P3, Adobe RGB, ProPhoto,
# Rec. 2020, a calibrated monitor's) is under 4 KB; only LUT-based device profiles (printers,
# scanners) run to hundreds of KB or MB. Copied into every output, such a profile would
# outweigh a thumbnail many times over (a 1 MB profile and 20 sizes wrote 20 MB).
MAX_ICC_BYTES = 64 * 1024


def bounded_icc(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """The image and the profile to copy into its outputs: a profile over MAX_ICC_BYTES is
    not copied; RGB pixels are converted from it to sRGB (what untagged outputs are read as)
    when LittleCMS can read it, so colours stay right; else it is dropped as it is."""
    if icc is None or len(icc) <= MAX_ICC_BYTES:
        return im, icc
    return _to_srgb(im, icc), None


def _to_srgb(im: Image.Image, icc: bytes) -> Image.Image:
    if ImageCms is None or im.mode not in ("RGB", "RGBA") or icc[16:20] != b"RGB ":
        return im
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        srgb = ImageCms.createProfile("sRGB")
        converted = ImageCms.profileToProfile(im, source, srgb, outputMode=im.mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return im  # not a profile LittleCMS can use: the pixels stay as they are
    return converted if converted is not None else im


def icc_for(mode: str, icc: bytes | None) -> bytes | None:
    """The source's ICC profile if it still describes `mode`'s colour space, else None.

    A CMYK profile on converted RGB pixels, or a grey one on RGB, would make viewers
    misread the colours; untagged output is read as sRGB.
    """
    if not icc or len(icc) < 20:
        return None
    space = icc[16:20]  # the header's data colour space signature
    wanted = b"GRAY" if mode in ("L", "LA") else b"RGB "
    return icc if space == wanted else None


def save(im: Image.Image, f: IO[bytes], fmt: OutputFormat, quality: int, icc: bytes | None) -> None:
    options: dict[str, object] = {}
    if fmt in ("jpeg", "webp"):
        options["quality"] = quality
    if icc:
        options["icc_profile"] = icc
    im.save(f, format=_PIL_FORMATS[fmt], **options)
