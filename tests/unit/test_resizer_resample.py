"""The banded resample (services/resizer/resample.py) gives Pillow's resize: the same bytes when
the box splits evenly, at most one level apart on a rare pixel otherwise; small pictures and
premultiplied modes go to Pillow whole."""

from __future__ import annotations

import random
from typing import cast

import pytest
from PIL import Image, ImageChops

from services.resizer import resample as banded

LANCZOS = Image.Resampling.LANCZOS
GAP = 2.0


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """2400x1800 with gradients and noise: large enough to be banded (over MIN_PIXELS)."""
    size = (2400, 1800)
    channels = [
        Image.radial_gradient("L").resize(size),
        Image.effect_noise(size, 40),
        Image.linear_gradient("L").rotate(90).resize(size),
    ]
    return Image.merge("RGB", channels)


def _pillow(im: Image.Image, size: tuple[int, int], box: banded.Box) -> Image.Image:
    return im.resize(size, LANCZOS, box=box, reducing_gap=GAP)


def _bands_used(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many calls each banded step ran, recorded as they run."""
    seen: list[int] = []
    run_all = banded._run_all

    def counting(calls):  # type: ignore[no-untyped-def]
        seen.append(len(calls))
        return run_all(calls)

    monkeypatch.setattr(banded, "_run_all", counting)
    return seen


@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("size", [(800, 600), (600, 450), (1200, 900), (480, 2)])
def test_a_whole_picture_resampled_in_bands_is_byte_for_byte_pillows(
    photo: Image.Image, mode: str, size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    im = photo.convert(mode)
    box = (0.0, 0.0, float(im.width), float(im.height))
    seen = _bands_used(monkeypatch)
    out = banded.resample(im, size, box, GAP)
    assert seen and all(n == banded.BANDS for n in seen)  # reduce (when due) and LANCZOS
    expected = _pillow(im, size, box)
    assert (out.mode, out.size) == (expected.mode, expected.size)
    assert out.tobytes() == expected.tobytes()


def test_any_box_in_bands_is_at_most_one_level_from_pillow_on_a_rare_pixel(
    photo: Image.Image,
) -> None:
    rng = random.Random(7)
    for _ in range(12):
        x0, y0 = rng.uniform(0, 400), rng.uniform(0, 300)
        box = (x0, y0, rng.uniform(x0 + 50, 2400), rng.uniform(y0 + 50, 1800))
        size = (rng.randint(2, 1200), rng.randint(2, 900))
        out, expected = banded.resample(photo, size, box, GAP), _pillow(photo, size, box)
        assert out.size == expected.size
        extrema = cast(
            tuple[tuple[int, int], ...], ImageChops.difference(out, expected).getextrema()
        )
        worst = max(high for _, high in extrema)
        differing = sum(a != b for a, b in zip(out.tobytes(), expected.tobytes(), strict=True))
        assert worst <= 1, (box, size)
        assert differing <= len(expected.tobytes()) // 1000, (box, size, differing)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_premultiplied_modes_go_to_pillow_whole(
    photo: Image.Image, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    im = photo.convert(mode)
    box = (13.5, 7.25, 2311.0, 1790.5)
    seen = _bands_used(monkeypatch)
    assert (
        banded.resample(im, (700, 500), box, GAP).tobytes()
        == _pillow(im, (700, 500), box).tobytes()
    )
    assert seen == []


def test_a_small_picture_goes_to_pillow_whole(
    photo: Image.Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = photo.resize((1200, 900))
    assert small.width * small.height < banded.MIN_PIXELS
    seen = _bands_used(monkeypatch)
    box = (0.0, 0.0, 1200.0, 900.0)
    assert (
        banded.resample(small, (300, 225), box, GAP).tobytes()
        == _pillow(small, (300, 225), box).tobytes()
    )
    assert seen == []
