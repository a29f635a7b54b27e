"""Pillow's `resize(size, LANCZOS, box, reducing_gap)` in horizontal bands on two threads:
Pillow lets go of the GIL while it reduces and resamples, so a large picture's resample
takes about half the time on two cores (a 4000x3000 PNG to 800 px: ~50 -> ~30 ms of a
~270 ms job, most of the rest being the PNG decode).

The bands are not stitched approximations: the box reduce runs on the same grid of whole
factors as Pillow's own (each band starts on a multiple of the factor), and each output
band's LANCZOS reads the whole reduced picture through its own share of the box, so the
filter reaches across band edges as in one call. The one difference is rounding: a band's
box, computed in floating point, can differ from Pillow's in its last bits, and a pixel in
some ten thousand then comes out one level apart. Premultiplied modes (LA, RGBA) would
amplify that at low alpha, so they go to Pillow whole.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from itertools import pairwise
from typing import TypeVar

from PIL import Image

LANCZOS = Image.Resampling.LANCZOS
BANDS = 2  # the machines we aim at have two cores or more; more bands only add overhead
# Below this many source pixels a thread hand-off costs more than half the resample saves.
MIN_PIXELS = 2_000_000
BANDED_MODES = ("L", "RGB")

Box = tuple[float, float, float, float]
T = TypeVar("T")

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def resample(im: Image.Image, size: tuple[int, int], box: Box, reducing_gap: float) -> Image.Image:
    """`im.resize(size, LANCZOS, box=box, reducing_gap=reducing_gap)`, in bands when `im`
    is large enough to gain from them."""
    if im.mode not in BANDED_MODES or im.width * im.height < MIN_PIXELS or size[1] < BANDS:
        return im.resize(size, LANCZOS, box=box, reducing_gap=reducing_gap)
    im.load()
    factor_x = int((box[2] - box[0]) / size[0] / reducing_gap) or 1
    factor_y = int((box[3] - box[1]) / size[1] / reducing_gap) or 1
    if factor_x > 1 or factor_y > 1:
        reduce_box = im._get_safe_box(size, LANCZOS, box)
        im = _reduce_in_bands(im, (factor_x, factor_y), reduce_box)
        box = (
            (box[0] - reduce_box[0]) / factor_x,
            (box[1] - reduce_box[1]) / factor_y,
            (box[2] - reduce_box[0]) / factor_x,
            (box[3] - reduce_box[1]) / factor_y,
        )
    return _lanczos_in_bands(im, size, box)


def _reduce_in_bands(
    im: Image.Image, factor: tuple[int, int], box: tuple[int, int, int, int]
) -> Image.Image:
    """`im.reduce(factor, box)`: each band a whole number of factor rows from the box's top."""
    x0, y0, x1, y1 = box
    rows = -(-(y1 - y0) // factor[1])  # reduced rows, the last one maybe partial
    cuts = _cuts(rows)
    tops = [y0 + r * factor[1] for r in cuts]
    bottoms = [*tops[1:-1], y1]
    bands = _run_all(
        [partial(im.reduce, factor, (x0, t, x1, b)) for t, b in zip(tops, bottoms, strict=False)]
    )
    return _stacked(bands, im.mode, (-(-(x1 - x0) // factor[0]), rows), cuts)


def _lanczos_in_bands(im: Image.Image, size: tuple[int, int], box: Box) -> Image.Image:
    """`im.resize(size, LANCZOS, box)`: output rows in bands, each from its share of `box`."""
    cuts = _cuts(size[1])
    scale = (box[3] - box[1]) / size[1]
    bands = _run_all(
        [
            partial(
                im.resize,
                (size[0], bottom - top),
                LANCZOS,
                (box[0], box[1] + top * scale, box[2], box[1] + bottom * scale),
            )
            for top, bottom in pairwise(cuts)
        ]
    )
    return _stacked(bands, im.mode, size, cuts)


def _cuts(rows: int) -> list[int]:
    """Where BANDS bands of `rows` rows start, and `rows` at the end."""
    return [rows * i // BANDS for i in range(BANDS)] + [rows]


def _stacked(
    bands: Sequence[Image.Image], mode: str, size: tuple[int, int], cuts: list[int]
) -> Image.Image:
    out = Image.new(mode, size)
    for band, top in zip(bands, cuts, strict=False):
        out.paste(band, (0, top))
    return out


def _run_all(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Every call but the first on the pool, the first on this thread; their results."""
    futures = [_shared_pool().submit(call) for call in calls[1:]]
    first = calls[0]()
    return [first, *(f.result() for f in futures)]


def _shared_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(BANDS - 1, thread_name_prefix="resample")
        return _pool
