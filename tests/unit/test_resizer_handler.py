"""The resize handler on real images, a real folder blob store, and reopened outputs."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageFile
from PIL.JpegImagePlugin import JpegImageFile
from PIL.PngImagePlugin import PngInfo

from services.resizer import imaging
from services.resizer.handler import UNSUPPORTED, resize_job
from services.resizer.imaging import Target
from shared.blobs import FolderBlobStore, input_key, output_key
from shared.config import Settings
from shared.errors import PermanentJobError
from shared.jobtypes.resize import ResizeLimits
from shared.messages import Job
from tests.unit import images

LIMITS = ResizeLimits(max_image_pixels=50_000_000, max_output_side=10_000)


@pytest.fixture
def store(tmp_path: Path) -> FolderBlobStore:
    return FolderBlobStore(tmp_path / "blobs")


def submit(store: FolderBlobStore, data: bytes, name: str = "in.img", **params: Any) -> Job:
    job = Job(type="resize", params=params)
    key = store.write_bytes(input_key(job.id, name), data)
    return job.model_copy(update={"inputs": [key]})


def resize(store: FolderBlobStore, data: bytes, **params: Any) -> list[Image.Image]:
    """Run one job and reopen every output it wrote, in order."""
    job = submit(store, data, **params)
    return [reopen(store, key) for key in resize_job(job, store, LIMITS)]


def reopen(store: FolderBlobStore, key: str) -> Image.Image:
    im = Image.open(io.BytesIO(store.read_bytes(key)))
    im.load()
    return im


def rejected(store: FolderBlobStore, job: Job, limits: ResizeLimits = LIMITS) -> str:
    with pytest.raises(PermanentJobError) as caught:
        resize_job(job, store, limits)
    assert store.list(f"outputs/{job.id}") == []  # nothing half-done left behind
    return str(caught.value)


def pixel(im: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    value = im.getpixel(xy)
    assert isinstance(value, tuple), value
    return value


def level(im: Image.Image, xy: tuple[int, int]) -> int:
    """The value of a one-band (L) pixel."""
    value = im.getpixel(xy)
    assert isinstance(value, int), value
    return value


def near(actual: tuple[int, ...], expected: tuple[int, ...], tol: int = 12) -> bool:
    """Pixel equality up to lossy-codec noise."""
    return all(abs(a - e) <= tol for a, e in zip(actual, expected, strict=True))


RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


# --- sizes and fits -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        ({"width": 100, "height": 100}, (100, 50)),
        ({"width": 300, "height": 50}, (100, 50)),
        ({"width": 200}, (200, 100)),
        ({"height": 50}, (100, 50)),
    ],
)
def test_contain_fits_inside_box_keeping_aspect_ratio(
    store: FolderBlobStore, box: dict[str, int], expected: tuple[int, int]
) -> None:
    [out] = resize(store, images.encode(images.photo((400, 200)), "JPEG"), fit="contain", **box)
    assert out.size == expected


def test_cover_fills_box_and_crops_centre(store: FolderBlobStore) -> None:
    # 500x100 red|green|green|green|blue: a square from the centre is green edge to edge,
    # while a squashed or off-centre one would show red or blue.
    src = images.stripes((500, 100), ["red", "lime", "lime", "lime", "blue"])
    [out] = resize(store, images.encode(src, "PNG"), width=50, height=50, fit="cover")
    assert out.size == (50, 50)
    for xy in [(0, 0), (49, 0), (0, 49), (49, 49), (25, 25)]:
        assert pixel(out, xy) == GREEN, xy


def test_exact_stretches_whole_image_to_box(store: FolderBlobStore) -> None:
    src = images.stripes((300, 100), ["red", "lime", "blue"])
    [out] = resize(store, images.encode(src, "PNG"), width=90, height=120, fit="exact")
    assert out.size == (90, 120)
    assert near(pixel(out, (0, 60)), RED)
    assert near(pixel(out, (45, 60)), GREEN)
    assert near(pixel(out, (89, 60)), BLUE)


@pytest.mark.parametrize("fit", ["cover", "exact"])
@pytest.mark.parametrize(
    ("box", "expected"), [({"width": 100}, (100, 50)), ({"height": 20}, (40, 20))]
)
def test_cover_and_exact_with_one_side_behave_like_contain(
    store: FolderBlobStore, fit: str, box: dict[str, int], expected: tuple[int, int]
) -> None:
    [out] = resize(store, images.encode(images.photo((400, 200)), "PNG"), fit=fit, **box)
    assert out.size == expected


def test_thin_image_never_gets_a_zero_pixel_side(store: FolderBlobStore) -> None:
    [out] = resize(store, images.encode(images.solid((1000, 10)), "PNG"), width=40)
    assert out.size == (40, 1)  # 0.4 rounds to 0


def test_small_image_is_scaled_up_to_the_box(store: FolderBlobStore) -> None:
    [out] = resize(store, images.encode(images.solid((100, 50)), "PNG"), width=200)
    assert out.size == (200, 100)


def test_sizes_make_a_thumbnail_set_in_request_order(store: FolderBlobStore) -> None:
    job = submit(
        store,
        images.encode(images.photo((400, 200)), "JPEG"),
        sizes=[{"width": 200}, {"width": 50}, {"width": 300, "height": 30}],
    )
    keys = resize_job(job, store, LIMITS)
    names = ["200x100.jpg", "50x25.jpg", "60x30.jpg"]
    assert keys == [output_key(job.id, name) for name in names]
    assert [reopen(store, key).size for key in keys] == [(200, 100), (50, 25), (60, 30)]


def test_boxes_giving_the_same_size_are_written_once(store: FolderBlobStore) -> None:
    job = submit(
        store,
        images.encode(images.photo((400, 200)), "PNG"),
        sizes=[{"width": 100}, {"width": 100, "height": 500}, {"width": 50}, {"height": 50}],
    )
    keys = resize_job(job, store, LIMITS)
    assert keys == [output_key(job.id, "100x50.png"), output_key(job.id, "50x25.png")]
    assert store.list(f"outputs/{job.id}") == sorted(keys)


def test_running_a_job_twice_gives_the_same_outputs(store: FolderBlobStore) -> None:
    job = submit(store, images.encode(images.photo((400, 200)), "JPEG"), sizes=[{"width": 80}])
    first = resize_job(job, store, LIMITS)
    assert resize_job(job, store, LIMITS) == first
    assert store.list(f"outputs/{job.id}") == first  # no temp files left over


# --- orientation and metadata -----------------------------------------------------------------


def test_exif_orientation_6_gives_portrait_output_without_exif(store: FolderBlobStore) -> None:
    # Stored 400x200 red|blue; orientation 6 means "turn 90° clockwise to display".
    src = images.stripes((400, 200), ["red", "blue"])
    data = images.encode(src, "JPEG", exif=images.exif_bytes(orientation=6, make="TestCam"))
    [out] = resize(store, data, width=100)
    assert out.size == (100, 200)
    assert near(pixel(out, (50, 10)), RED)  # the stored left edge is now the top
    assert near(pixel(out, (50, 190)), BLUE)
    assert "exif" not in out.info
    assert dict(out.getexif()) == {}


@pytest.mark.parametrize(
    ("fmt", "pil_format"), [("jpeg", "JPEG"), ("png", "PNG"), ("webp", "WEBP")]
)
def test_metadata_is_stripped_but_icc_profile_kept(
    store: FolderBlobStore, fmt: str, pil_format: str
) -> None:
    icc = images.srgb_icc()
    data = images.encode(
        images.photo((200, 100)),
        "JPEG",
        exif=images.exif_bytes(make="SecretCam"),
        comment=b"secret comment",
        xmp=images.xmp_packet("Secret Author"),
        icc_profile=icc,
    )
    job = submit(store, data, width=100, format=fmt)
    [key] = resize_job(job, store, LIMITS)
    raw = store.read_bytes(key)
    for secret in (b"SecretCam", b"secret comment", b"Secret Author", b"Exif\x00\x00"):
        assert secret not in raw
    out = reopen(store, key)
    assert out.format == pil_format
    assert out.info.get("icc_profile") == icc


def test_png_text_chunks_are_stripped(store: FolderBlobStore) -> None:
    info = PngInfo()
    info.add_text("Author", "Secret Author")
    data = images.encode(
        images.solid((50, 50)), "PNG", pnginfo=info, exif=images.exif_bytes(make="X")
    )
    job = submit(store, data, width=20)
    [key] = resize_job(job, store, LIMITS)
    raw = store.read_bytes(key)
    assert b"Secret Author" not in raw
    assert b"tEXt" not in raw and b"eXIf" not in raw


@pytest.mark.parametrize(
    ("mode", "icc_space", "kept"),
    [
        ("RGB", b"RGB ", True),
        ("RGBA", b"RGB ", True),
        ("L", b"GRAY", True),
        ("RGB", b"CMYK", False),
        ("RGB", b"GRAY", False),
    ],
)
def test_icc_profile_is_kept_only_for_its_own_colour_space(
    mode: str, icc_space: bytes, kept: bool
) -> None:
    icc = bytes(16) + icc_space + bytes(108)
    assert (imaging.icc_for(mode, icc) == icc) is kept


def test_a_profile_over_the_size_limit_is_not_copied_and_its_colours_are_converted(
    store: FolderBlobStore,
) -> None:
    # Red in a space whose red is sRGB's green: converted, it is green, and untagged.
    icc = images.padded_icc(images.red_green_swapped_icc(), imaging.MAX_ICC_BYTES + 1)
    data = images.encode(images.solid((40, 40), (255, 0, 0)), "PNG", icc_profile=icc)
    sizes = [{"width": w} for w in range(10, 30)]

    outs = resize(store, data, sizes=sizes, format="jpeg")

    assert len(outs) == 20
    for out in outs:
        assert "icc_profile" not in out.info
        r, g, b = pixel(out, (4, 4))
        assert g > 200 and r < 60 and b < 60, (r, g, b)


def test_a_large_profile_that_is_no_profile_is_dropped_and_outputs_stay_small(
    store: FolderBlobStore,
) -> None:
    # The reproduction: a 1 KB PNG carrying a 1 MB "profile", 20 sizes: 20 MB of outputs.
    icc = images.junk_rgb_icc(1_000_000)
    data = images.encode(images.solid((40, 40), (10, 120, 200)), "PNG", icc_profile=icc)
    assert len(data) < 5_000
    job = submit(store, data, sizes=[{"width": w} for w in range(10, 30)], format="jpeg")

    keys = resize_job(job, store, LIMITS)

    assert len(keys) == 20
    assert sum(store.size(key) for key in keys) < 40_000
    assert pixel(reopen(store, keys[0]), (4, 4))[:3] == pytest.approx((10, 120, 200), abs=4)


def test_a_profile_at_the_size_limit_is_kept(store: FolderBlobStore) -> None:
    icc = images.padded_icc(images.srgb_icc(), imaging.MAX_ICC_BYTES)
    data = images.encode(images.solid((40, 40)), "PNG", icc_profile=icc)

    [out] = resize(store, data, width=20)

    assert out.info.get("icc_profile") == icc


# --- formats and modes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "suffix", "pil_format"),
    [
        (images.encode(images.solid((80, 40)), "JPEG"), ".jpg", "JPEG"),
        (images.encode(images.solid((80, 40)), "PNG"), ".png", "PNG"),
        (images.encode(images.solid((80, 40)), "WEBP"), ".webp", "WEBP"),
        (images.encode(images.solid((80, 40)), "GIF"), ".png", "PNG"),
        (images.mpo((80, 40)), ".jpg", "JPEG"),
    ],
    ids=["jpeg", "png", "webp", "gif", "mpo"],
)
def test_default_format_follows_input(
    store: FolderBlobStore, data: bytes, suffix: str, pil_format: str
) -> None:
    job = submit(store, data, width=40)
    [key] = resize_job(job, store, LIMITS)
    assert key.endswith(f"/40x20{suffix}")
    assert reopen(store, key).format == pil_format


def test_jpeg_is_converted_to_webp(store: FolderBlobStore) -> None:
    job = submit(store, images.encode(images.photo((200, 100)), "JPEG"), width=100, format="webp")
    [key] = resize_job(job, store, LIMITS)
    assert key.endswith("/100x50.webp")
    assert reopen(store, key).format == "WEBP"


def test_png_rgba_to_jpeg_is_rgb_with_white_where_transparent(store: FolderBlobStore) -> None:
    src = images.stripes((100, 100), [(0, 0, 0, 0), (255, 0, 0, 255)], mode="RGBA")
    [out] = resize(store, images.encode(src, "PNG"), width=50, format="jpeg")
    assert out.mode == "RGB"
    assert near(pixel(out, (5, 25)), WHITE)
    assert near(pixel(out, (45, 25)), RED, tol=20)


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_png_and_webp_keep_alpha(store: FolderBlobStore, fmt: str) -> None:
    src = images.stripes((100, 100), [(0, 0, 0, 0), (255, 0, 0, 255)], mode="RGBA")
    [out] = resize(store, images.encode(src, "PNG"), width=50, format=fmt)
    assert out.mode == "RGBA"
    assert pixel(out, (5, 25))[3] == 0
    assert pixel(out, (45, 25))[3] == 255


def test_grey_with_alpha_to_jpeg_is_flattened_grey(store: FolderBlobStore) -> None:
    src = images.stripes((100, 100), [(0, 0), (0, 255)], mode="LA")
    [out] = resize(store, images.encode(src, "PNG"), width=50, format="jpeg")
    assert out.mode == "L"
    assert level(out, (5, 25)) > 240
    assert level(out, (45, 25)) < 15


def test_palette_image_is_resampled_in_rgb_not_nearest(store: FolderBlobStore) -> None:
    [out] = resize(store, images.encode(images.checkerboard((64, 64)), "PNG"), width=16)
    assert out.mode == "RGB"
    assert near(pixel(out, (8, 8)), (128, 128, 128), tol=20)  # averaged, not black or white


def test_palette_with_transparency_keeps_alpha_in_png_and_is_white_in_jpeg(
    store: FolderBlobStore,
) -> None:
    src = images.stripes((100, 100), ["black", "red"]).convert("P")
    black = src.getpixel((0, 0))
    data = images.encode(src, "PNG", transparency=black)
    [png] = resize(store, data, width=50)
    assert png.mode == "RGBA"
    assert pixel(png, (5, 25))[3] == 0
    [jpeg] = resize(store, data, width=50, format="jpeg")
    assert near(pixel(jpeg, (5, 25)), WHITE)
    assert near(pixel(jpeg, (45, 25)), RED, tol=20)


def test_cmyk_jpeg_becomes_rgb(store: FolderBlobStore) -> None:
    data = images.encode(images.solid((80, 40), (255, 0, 0, 0), mode="CMYK"), "JPEG")
    [out] = resize(store, data, width=40)
    assert out.mode == "RGB"
    assert near(pixel(out, (20, 10)), (0, 255, 255), tol=20)  # pure cyan


def test_sixteen_bit_grey_png_is_scaled_to_eight_bits(store: FolderBlobStore) -> None:
    [out] = resize(store, images.sixteen_bit_grey_png((40, 40), 32768), width=20)
    assert out.mode == "L"
    assert level(out, (10, 10)) == 128  # not clipped to white


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animated_image_uses_first_frame(store: FolderBlobStore, fmt: str) -> None:
    [out] = resize(store, images.animated(fmt, ["red", "lime", "blue"]), width=30)
    assert out.size == (30, 20)
    assert near(pixel(out.convert("RGB"), (15, 10)), RED, tol=20)


def test_quality_changes_file_size(store: FolderBlobStore) -> None:
    data = images.encode(images.photo((400, 300)), "JPEG", quality=95)
    sizes = {}
    for fmt in ("jpeg", "webp"):
        for quality in (20, 95):
            job = submit(store, data, width=300, format=fmt, quality=quality)
            [key] = resize_job(job, store, LIMITS)
            sizes[fmt, quality] = len(store.read_bytes(key))
    assert sizes["jpeg", 20] * 2 < sizes["jpeg", 95]
    assert sizes["webp", 20] * 2 < sizes["webp", 95]


# --- speed: decode no larger than needed ---------------------------------------------------


class _Spy:
    """Records JPEG draft calls and what every resize is handed, without changing either."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.drafts: list[tuple[tuple[int, int] | None, bool, Any]] = []
        self.resizes: list[tuple[tuple[int, int], tuple[int, int], Any, dict[str, Any]]] = []
        real_draft, real_resize = JpegImageFile.draft, Image.Image.resize

        def draft(im: JpegImageFile, mode: str | None, size: tuple[int, int] | None) -> Any:
            still_undecoded = bool(im.tile)  # load() empties tile
            result = real_draft(im, mode, size)
            self.drafts.append((size, still_undecoded, result))
            return result

        def resize(im: Image.Image, size: Any, *args: Any, **kwargs: Any) -> Image.Image:
            resample = args[0] if args else kwargs.get("resample")
            self.resizes.append((im.size, tuple(size), resample, kwargs))
            return real_resize(im, size, *args, **kwargs)

        monkeypatch.setattr(JpegImageFile, "draft", draft)
        monkeypatch.setattr(Image.Image, "resize", resize)


def test_big_jpeg_is_drafted_before_decoding_and_resized_from_the_small_copy(
    store: FolderBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = images.encode(images.photo((2400, 1600)), "JPEG", quality=90)
    spy = _Spy(monkeypatch)
    [out] = resize(store, data, width=200)
    assert out.size == (200, 133)
    [(requested, still_undecoded, result)] = spy.drafts
    assert requested == (400, 266)  # twice the output: LANCZOS always has work to do
    assert still_undecoded
    assert result is not None
    [(source, target, resample, kwargs)] = spy.resizes
    assert source == (600, 400)  # libjpeg decoded at 1/4 scale: 16x fewer pixels
    assert target == (200, 133)
    assert resample == Image.Resampling.LANCZOS
    assert kwargs["reducing_gap"] == 2.0


@pytest.mark.parametrize(
    ("orientation", "params"),
    [
        (1, {"width": 150}),
        (1, {"width": 100, "height": 300, "fit": "cover"}),
        (6, {"width": 800, "height": 200, "fit": "exact"}),
        (6, {"height": 200}),
        (8, {"width": 100, "height": 400, "fit": "cover"}),
        (6, {"sizes": [{"width": 50}, {"width": 300, "height": 30}, {"height": 400}]}),
    ],
)
def test_draft_never_decodes_below_the_output_size(
    store: FolderBlobStore,
    monkeypatch: pytest.MonkeyPatch,
    orientation: int,
    params: dict[str, Any],
) -> None:
    data = images.encode(
        images.photo((1600, 800)), "JPEG", exif=images.exif_bytes(orientation=orientation)
    )
    spy = _Spy(monkeypatch)
    job = submit(store, data, **params)
    resize_job(job, store, LIMITS)
    assert spy.drafts and spy.resizes
    for _source, target, _resample, kwargs in spy.resizes:
        left, top, right, bottom = kwargs["box"]
        assert right - left >= target[0] - 1e-6
        assert bottom - top >= target[1] - 1e-6


def test_cover_needs_the_whole_source_scaled_to_cover() -> None:
    cover = Target(100, 400, crop=True)
    assert imaging.needed_source((1600, 800), [cover]) == (800, 400)
    assert imaging.needed_source((1600, 800), [Target(100, 50), Target(30, 90)]) == (100, 90)


def test_cover_box_is_the_centre_in_source_coordinates() -> None:
    assert imaging.source_box((300, 100), Target(50, 50, crop=True)) == (100, 0, 200, 100)
    assert imaging.source_box((300, 100), Target(50, 50)) == (0, 0, 300, 100)


# --- bad input ------------------------------------------------------------------------------


def test_zero_byte_input_is_rejected(store: FolderBlobStore) -> None:
    assert rejected(store, submit(store, b"", width=10)) == "input file is empty"


def test_random_bytes_are_not_a_supported_image(store: FolderBlobStore) -> None:
    noise = bytes(range(256)) * 40
    assert rejected(store, submit(store, noise, width=10)) == UNSUPPORTED


@pytest.mark.parametrize("fmt", ["BMP", "TIFF"])
def test_format_outside_the_allow_list_is_rejected(store: FolderBlobStore, fmt: str) -> None:
    data = images.encode(images.solid((20, 20)), fmt)
    assert rejected(store, submit(store, data, width=10)) == UNSUPPORTED


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
@pytest.mark.parametrize("load_truncated_images", [False, True])
def test_truncated_image_is_rejected_as_corrupt(
    store: FolderBlobStore, monkeypatch: pytest.MonkeyPatch, fmt: str, load_truncated_images: bool
) -> None:
    # Pillow's global switch pads truncated files with grey; the handler must not depend on it.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", load_truncated_images)
    data = images.encode(images.photo((200, 150)), fmt)
    message = rejected(store, submit(store, data[: len(data) // 2], width=10))
    assert message.startswith("input image is truncated or corrupt: ")


def test_image_over_the_pixel_limit_is_rejected_before_decoding(store: FolderBlobStore) -> None:
    # Only the header claims 8000x8000 (under Pillow's own limit): decoding would fail
    # differently, so this message proves the check ran first.
    data = images.png_claiming_size(8000, 8000)
    message = rejected(store, submit(store, data, width=10))
    assert (
        message == "input image is 8000x8000 = 64000000 pixels, over the limit of 50000000 pixels"
    )


def test_real_image_over_a_small_pixel_limit_is_rejected(store: FolderBlobStore) -> None:
    data = images.encode(images.solid((200, 100)), "PNG")
    limits = ResizeLimits(max_image_pixels=10_000, max_output_side=10_000)
    message = rejected(store, submit(store, data, width=10), limits)
    assert message == "input image is 200x100 = 20000 pixels, over the limit of 10000 pixels"


@pytest.mark.parametrize("side", [10_000, 100_000])
def test_pillow_decompression_bomb_check_is_an_error_even_above_our_limit(
    store: FolderBlobStore, side: int
) -> None:
    # 10^8 pixels only makes Pillow warn; 10^10 makes it raise. Both must be job errors.
    pillow_limit, filters = Image.MAX_IMAGE_PIXELS, list(warnings.filters)
    limits = ResizeLimits(max_image_pixels=10**12, max_output_side=10_000)
    job = submit(store, images.png_claiming_size(side, side), width=10)
    assert rejected(store, job, limits).startswith("input image is too large: ")
    assert pillow_limit == Image.MAX_IMAGE_PIXELS
    assert warnings.filters == filters


@pytest.mark.parametrize(
    ("source", "params"),
    [
        ((100, 100), {"width": 20_000}),
        ((100, 100), {"width": 50, "height": 10_001, "fit": "exact"}),
        ((10, 1000), {"width": 200}),  # the height follows to 20000
        ((100, 100), {"width": 10**30}),
    ],
)
def test_absurd_output_size_is_rejected(
    store: FolderBlobStore, source: tuple[int, int], params: dict[str, Any]
) -> None:
    data = images.encode(images.solid(source), "PNG")
    message = rejected(store, submit(store, data, **params))
    assert "absurd" in message
    assert "at most 10000 pixels" in message


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"fit": "contain"},
        {"width": 100, "quality": 0},
        {"width": 100, "quality": 96},
        {"width": 100, "fit": "fill"},
        {"width": 0},
        {"width": 100, "format": "gif"},
        {"width": 100, "sizes": [{"width": 50}]},
        {"sizes": [{}]},
        {"width": 100, "colour": "red"},
    ],
)
def test_invalid_params_are_rejected(store: FolderBlobStore, params: dict[str, Any]) -> None:
    data = images.encode(images.solid((20, 20)), "PNG")
    assert rejected(store, submit(store, data, **params)).startswith("invalid params: ")


@pytest.mark.parametrize("count", [0, 2])
def test_job_without_exactly_one_input_is_rejected(store: FolderBlobStore, count: int) -> None:
    job = Job(type="resize", params={"width": 10})
    data = images.encode(images.solid((20, 20)), "PNG")
    keys = [store.write_bytes(input_key(job.id, f"{i}.png"), data) for i in range(count)]
    message = rejected(store, job.model_copy(update={"inputs": keys}))
    assert message == f"a resize job takes exactly one input, got {count}"


def test_missing_input_blob_is_rejected(store: FolderBlobStore) -> None:
    job = Job(type="resize", params={"width": 10}, inputs=["inputs/nothing/here.jpg"])
    message = rejected(store, job)
    assert message.startswith("cannot read the input: ")
    assert "does not exist" in message


def test_limits_come_from_settings() -> None:
    settings = Settings(max_image_pixels=1234, max_output_side=56)
    assert ResizeLimits.from_settings(settings) == ResizeLimits(1234, 56)
