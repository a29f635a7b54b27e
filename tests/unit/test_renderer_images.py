"""Images from the job's inputs in `document` PDFs: image blocks, grids, the contact sheet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.renderer.limits import RenderLimits
from shared.blobs import FolderBlobStore
from tests.support.pdfs import image_xobjects, text_of
from tests.support.rendering import rejected, render, render_job_with, run
from tests.unit import images


@pytest.fixture
def store(tmp_path: Path) -> FolderBlobStore:
    return FolderBlobStore(tmp_path / "blobs")


def document(*blocks: Any, **params: Any) -> dict[str, Any]:
    return {"template": "document", "data": {"blocks": list(blocks)}, **params}


def thumbnails(count: int, size: tuple[int, int] = (120, 80)) -> list[tuple[str, bytes]]:
    """Distinct PNG pictures (noise makes each one different)."""
    return [(f"thumb-{i}.png", images.encode(images.photo(size), "PNG")) for i in range(count)]


def only_xobject(pdf: Any) -> Any:
    (xobject,) = [x.get_object() for x in pdf.pages[0]["/Resources"]["/XObject"].values()]
    return xobject


def test_image_blocks_embed_inputs_named_by_index_or_key(store: FolderBlobStore) -> None:
    job = render_job_with(store, {}, thumbnails(3))
    params = document(
        {"image": 0, "caption": "the first"},
        {"image": job.inputs[2], "width_mm": 50},
        {"image": 0},  # the same picture again: embedded once, drawn twice
    )

    _, pdf = run(store, job.model_copy(update={"params": params}))

    assert image_xobjects(pdf) == 2
    assert "the first" in text_of(pdf)


def test_a_contact_sheet_of_all_inputs_when_a_document_has_no_blocks(
    store: FolderBlobStore,
) -> None:
    inputs = thumbnails(7)

    key, pdf = render(store, {"template": "document"}, inputs)

    assert key.endswith("/document.pdf")
    assert image_xobjects(pdf) == 7
    text = text_of(pdf)
    assert text.startswith("Contact sheet")
    for name, _ in inputs:
        assert name in text
    assert text.count("120\u00d780 px") == 7
    assert pdf.metadata is not None and pdf.metadata.title == "Contact sheet"


def test_a_long_contact_sheet_flows_over_several_pages(store: FolderBlobStore) -> None:
    inputs = thumbnails(30, size=(300, 300))

    _, pdf = render(store, document({"images": "all", "columns": 2, "captions": False}), inputs)

    assert image_xobjects(pdf) == 30
    assert len(pdf.pages) > 2
    assert "thumb-0.png" not in text_of(pdf)  # captions off


def test_an_exif_rotated_photo_is_embedded_upright(store: FolderBlobStore) -> None:
    sideways = images.encode(
        images.photo((200, 100)), "JPEG", exif=images.exif_bytes(orientation=6)
    )

    _, pdf = render(store, document({"image": 0}), [("phone.jpg", sideways)])

    xobject = only_xobject(pdf)
    assert (xobject["/Width"], xobject["/Height"]) == (100, 200)


def test_an_upright_jpeg_is_embedded_without_re_encoding(store: FolderBlobStore) -> None:
    jpeg = images.encode(images.photo((160, 90)), "JPEG", quality=80)

    _, pdf = render(store, document({"image": 0}), [("photo.jpg", jpeg)])

    xobject = only_xobject(pdf)
    assert list(xobject["/Filter"]) == ["/DCTDecode"]
    assert xobject.get_data() == jpeg


def test_a_transparent_png_keeps_its_transparency(store: FolderBlobStore) -> None:
    png = images.encode(images.solid((50, 50), (255, 0, 0, 128), mode="RGBA"), "PNG")

    _, pdf = render(store, document({"image": 0}), [("glass.png", png)])

    xobject = only_xobject(pdf)
    assert "/SMask" in xobject


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "WEBP", "JPEG"])
def test_every_supported_format_is_embedded(store: FolderBlobStore, fmt: str) -> None:
    picture = images.encode(images.solid((64, 48), "blue"), fmt)

    _, pdf = render(store, document({"image": 0}), [(f"pic.{fmt.lower()}", picture)])

    xobject = only_xobject(pdf)
    assert (xobject["/Width"], xobject["/Height"]) == (64, 48)


def test_a_huge_picture_is_shrunk_to_print_resolution_before_embedding(
    store: FolderBlobStore,
) -> None:
    wide = images.encode(images.solid((3000, 300), "green"), "PNG")

    _, pdf = render(store, document({"image": 0}), [("wide.png", wide)])

    xobject = only_xobject(pdf)
    assert (xobject["/Width"], xobject["/Height"]) == (2480, 248)


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ({"image": 3}, "data.blocks.0.image: input 3 does not exist (the job has 1 inputs)"),
        ({"images": [0, 1]}, "data.blocks.0.images.1: input 1 does not exist"),
        ({"image": "inputs/other-job/secret.png"}, "is not one of this job's inputs"),
    ],
)
def test_an_image_that_is_not_among_the_inputs_is_rejected(
    store: FolderBlobStore, block: dict[str, Any], expected: str
) -> None:
    error = rejected(store, document(block), thumbnails(1))

    assert expected in str(error)


def test_a_blob_outside_the_inputs_cannot_be_pulled_in_even_if_it_exists(
    store: FolderBlobStore,
) -> None:
    other = store.write_bytes("outputs/other-job/private.png", thumbnails(1)[0][1])

    error = rejected(store, document({"image": other}), thumbnails(1))

    assert "not one of this job's inputs" in str(error)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"%PDF-1.4 not a picture", "is not a supported image (JPEG, PNG, WebP, GIF)"),
        (images.encode(images.photo((64, 64)), "JPEG")[:300], "is truncated or corrupt"),
        (images.encode(images.solid((8, 8)), "BMP"), "is not a supported image"),
    ],
)
def test_an_input_that_is_not_a_usable_image_is_rejected_naming_it(
    store: FolderBlobStore, data: bytes, expected: str
) -> None:
    error = rejected(store, {"template": "document"}, [("scan.bin", data)])

    assert "scan.bin" in str(error)
    assert expected in str(error)


def test_an_input_over_the_pixel_limit_is_rejected(store: FolderBlobStore) -> None:
    limits = RenderLimits(max_image_pixels=100 * 100)
    big = images.encode(images.solid((101, 100)), "PNG")

    error = rejected(store, {"template": "document"}, [("big.png", big)], limits)

    assert "101x100 pixels, over the limit of 10000 pixels" in str(error)


def test_more_images_than_the_limit_is_rejected(store: FolderBlobStore) -> None:
    limits = RenderLimits(max_pdf_images=2)

    error = rejected(store, {"template": "document"}, thumbnails(3), limits)

    assert "3 images, over the limit of 2 (MAX_PDF_IMAGES)" in str(error)
    assert error.kind == "limit_exceeded"
