"""The gateway's pure checks: mail addresses and headers, image sniffing, sizes, follow-ups,
idempotency fingerprints."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image

from services.gateway.checks import (
    check_follow_up,
    check_params,
    parse_follow_up,
    refused_as_422,
)
from services.gateway.idempotency import fingerprint
from services.gateway.rejections import Rejected
from services.gateway.uploads import check_image, read_image, sniff, store_image
from shared import strictjson
from shared.blobs import FolderBlobStore
from shared.config import Settings
from shared.jobtypes import MAIL
from shared.jobtypes.mail import CheckedMailParams
from shared.jobtypes.resize import Size, parse_sizes
from shared.limits import Limits, limits_of
from shared.mailaddr import check_header_value, check_recipient_count, parse_address
from shared.messages import FollowUp
from shared.pillow import use_pixel_limit
from tests.security.make_corpus import png_bomb

LIMITS = limits_of(Settings(max_recipients=10, max_mail_bytes=1000))


def parse_size(text: str, index: int) -> Size:
    """One `sizes` form value at position `index`, as the gateway reads it."""
    with refused_as_422():
        return parse_sizes(["1x1"] * index + [text])[index]


def check_mail(params: CheckedMailParams, limits: Limits) -> None:
    check_params(MAIL, params, limits)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("ann@example.org", ("", "ann@example.org")),
        ("  ann@example.org ", ("", "ann@example.org")),
        ("Ann Example <ann@example.org>", ("Ann Example", "ann@example.org")),
        ('"Example, Ann" <ann@example.org>', ("Example, Ann", "ann@example.org")),
        ("root@localhost", ("", "root@localhost")),
        ("first.last+tag@sub.example.co.uk", ("", "first.last+tag@sub.example.co.uk")),
    ],
)
def test_one_address_per_entry_is_accepted(value: str, parsed: tuple[str, str]) -> None:
    assert parse_address(value) == parsed


@pytest.mark.parametrize(
    "value",
    [
        "ann@example.org, bob@example.org",  # a list smuggled into one entry
        "ann@example.org;bob@example.org",
        "Ann <ann@example.org>, bob@example.org",
        "ann@example.org <bob@example.org>",
        "undisclosed-recipients: ann@example.org;",
        "ann@example.org\r\nBcc: eve@example.org",
        "ann@example.org\n",
        "ann",
        "@example.org",
        "ann@",
        "ann@-example.org",
        "Ann <ann@example.org",
        "",
        "a" * 320 + "@example.org",
    ],
)
def test_anything_but_one_plain_address_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="must"):
        parse_address(value)


@pytest.mark.parametrize("value", ["Hi\r\nBcc: x@y.z", "Hi\nthere", "Hi\rthere", "nul\x00"])
def test_header_values_with_line_breaks_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="line breaks"):
        check_header_value(value)


def test_the_recipient_limit_counts_every_list() -> None:
    assert check_recipient_count(3, ["a@b.c"], ["d@e.f"], ["g@h.i"]) == 3
    with pytest.raises(ValueError, match="too many recipients: 4, at most 3"):
        check_recipient_count(3, ["a@b.c", "x@y.z"], ["d@e.f"], ["g@h.i"])


def _image(fmt: str, size: tuple[int, int] = (8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, "red").save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fmt", "name"), [("JPEG", "jpeg"), ("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif")]
)
def test_allowed_images_are_known_by_their_bytes(fmt: str, name: str) -> None:
    data = _image(fmt)
    assert sniff(data[:16]) == name
    assert check_image(io.BytesIO(data), 1000) == name


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.7 not an image", b"BM" + b"\0" * 60, b"\xff\xd8\xff but broken"],
)
def test_other_files_are_415(data: bytes) -> None:
    with pytest.raises(Rejected) as refused:
        check_image(io.BytesIO(data), 1000)
    assert refused.value.status == 415


def test_an_empty_file_is_422_naming_file_as_empty() -> None:
    with pytest.raises(Rejected) as refused:
        check_image(io.BytesIO(b""), 1000)
    assert (refused.value.status, refused.value.field) == (422, "file")
    assert refused.value.message == "the upload is empty (0 bytes)"


def test_an_image_over_the_pixel_limit_is_422_before_any_decoding() -> None:
    with pytest.raises(Rejected) as refused:
        check_image(io.BytesIO(_image("PNG", (100, 100))), 9_999)
    assert (refused.value.status, refused.value.field) == (422, "file")


def test_a_pixel_limit_above_pillows_default_is_ours_to_enforce(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after
    limit = 400_000_000
    large = png_bomb(20_000, 10_000)  # 200 MP: over twice Pillow's default of ~89 MP
    use_pixel_limit(limit)
    assert check_image(io.BytesIO(large), limit) == "png"
    with pytest.raises(Rejected, match="at most 400000000"):
        check_image(io.BytesIO(png_bomb(20_001, 20_000)), limit)


def test_an_upload_over_the_byte_limit_leaves_nothing_in_the_store(tmp_path: Path) -> None:
    blobs = FolderBlobStore(tmp_path)
    data = _image("PNG", (64, 64))
    with pytest.raises(Rejected) as refused:
        store_image(io.BytesIO(data), blobs, "job-1", max_bytes=len(data) - 1, max_pixels=10**6)
    assert refused.value.status == 413
    assert blobs.list("inputs") == []
    assert not (tmp_path / "inputs" / "job-1").exists(), "not even an empty folder"
    stored = store_image(io.BytesIO(data), blobs, "job-2", max_bytes=len(data), max_pixels=10**6)
    assert (stored.key, stored.size, stored.format) == ("inputs/job-2/input.png", len(data), "png")
    assert blobs.read_bytes(stored.key) == data
    assert stored.sha256 == hashlib.sha256(data).hexdigest()  # hashed when asked


def test_an_upload_read_into_memory_keeps_the_same_byte_limit() -> None:
    data = _image("PNG", (64, 64))
    with pytest.raises(Rejected) as refused:
        read_image(io.BytesIO(data), "job-1", max_bytes=len(data) - 1, max_pixels=10**6)
    assert refused.value.status == 413
    stored, kept = read_image(io.BytesIO(data), "job-2", max_bytes=len(data), max_pixels=10**6)
    assert (stored.key, stored.size, stored.format) == ("inputs/job-2/input.png", len(data), "png")
    assert kept == data and stored.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("text", "size"),
    [("800x600", (800, 600)), ("800", (800, None)), ("x600", (None, 600)), ("800x", (800, None))],
)
def test_sizes_are_width_x_height(text: str, size: tuple[int | None, int | None]) -> None:
    parsed = parse_size(text, 0)
    assert (parsed.width, parsed.height) == size


@pytest.mark.parametrize("text", ["", "x", "0x10", "-5", "800X600", "8e2", "800x600x2"])
def test_bad_sizes_name_their_position(text: str) -> None:
    with pytest.raises(Rejected) as refused:
        parse_size(text, 3)
    assert (refused.value.status, refused.value.field) == (422, "sizes.3")


def test_a_follow_up_is_checked_with_its_own_job_type() -> None:
    good = {"to": ["a@b.c"], "subject": "s", "text": "t"}
    check_follow_up(FollowUp(type="mail", params=good), LIMITS)
    bad = FollowUp(type="resize", params={}, then=FollowUp(type="mail", params=good))
    with pytest.raises(Exception, match="give width, height or sizes"):
        check_follow_up(bad, LIMITS)
    injected = FollowUp(type="mail", params={**good, "subject": "s\r\nBcc: e@x.y"})
    with pytest.raises(Exception, match="line breaks"):
        check_follow_up(injected, LIMITS)
    crowd = FollowUp(type="mail", params={**good, "to": ["a@b.c"] * 11})
    with pytest.raises(Rejected) as refused:
        check_follow_up(crowd, LIMITS)
    assert refused.value.field == "then.params.to"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"n": NaN}', "NaN is not a JSON number"),
        (b'{"n": [1, Infinity]}', "Infinity is not a JSON number"),
        (b'{"n": -Infinity}', "-Infinity is not a JSON number"),
        (b'{"text": "caf\xe9"}', "not UTF-8 text"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"n": ' + b"9" * 5000 + b"}", "number too long"),
        (b'{"n": 1,}', "Expecting property name"),
    ],
)
def test_strict_json_refuses_what_is_not_json(body: bytes, says: str) -> None:
    with pytest.raises(json.JSONDecodeError, match=says):
        strictjson.loads(body)


def test_strict_json_reads_json_as_json() -> None:
    body = '{"a": [1, 2.5e3, -0, true, null, "é", {"b": "NaN"}]}'
    assert strictjson.loads(body.encode()) == json.loads(body)
    assert strictjson.loads(body) == json.loads(body)


def test_a_then_form_field_with_nan_is_refused_naming_then() -> None:
    with pytest.raises(Rejected) as refused:
        parse_follow_up('{"type": "render", "params": {"data": {"n": NaN}}}')
    assert (refused.value.status, refused.value.field) == (422, "then")
    assert "NaN is not a JSON number" in refused.value.message


def test_text_and_html_over_the_whole_mails_limit_are_refused_naming_the_field() -> None:
    fits = CheckedMailParams(
        to=["a@b.c"], subject="s", text="é" * 250, html="x" * 500
    )  # 1000 bytes
    check_mail(fits, LIMITS)
    over = CheckedMailParams(to=["a@b.c"], subject="s", html="x" * 1001)
    with pytest.raises(Rejected) as refused:
        check_mail(over, LIMITS)
    assert (refused.value.field, refused.value.kind) == ("html", "too_large")
    assert "1001 bytes" in refused.value.message and "MAX_MAIL_BYTES" in refused.value.message
    follow_up = FollowUp(type="mail", params={"to": ["a@b.c"], "subject": "s", "text": "x" * 1001})
    with pytest.raises(Rejected) as refused:
        check_follow_up(follow_up, LIMITS)
    assert refused.value.field == "then.params.text"


def test_fingerprints_differ_with_any_part_and_ignore_key_order() -> None:
    assert fingerprint("render", {"a": 1, "b": 2}) == fingerprint("render", {"b": 2, "a": 1})
    assert fingerprint("render", {"a": 1}) != fingerprint("mail", {"a": 1})
    assert fingerprint("resize", {"a": 1}, "sha-1") != fingerprint("resize", {"a": 1}, "sha-2")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_with(chunks: bytes) -> bytes:
    """A small PNG with `chunks` between its header (IHDR) and its pixels."""
    png = _image("PNG", (8, 8))
    after_ihdr = 8 + 25
    return png[:after_ihdr] + chunks + png[after_ihdr:]


ZEROS = zlib.compress(bytes((1 << 20) - 64), 9)  # a kilobyte that inflates to a megabyte


@pytest.mark.parametrize(
    ("chunks", "says"),
    [
        (_chunk(b"iCCP", b"p\0\0" + ZEROS) * 1000, "more than one iCCP chunk"),
        (_chunk(b"zTXt", b"k\0\0" + ZEROS) * 17, "more than 16 compressed text chunks"),
        (_chunk(b"tEXt", b"k\0v") * 1025, "more than 1024 chunks"),
    ],
)
def test_a_png_whose_metadata_would_inflate_on_the_gateway_is_415(chunks: bytes, says: str) -> None:
    """Pillow inflates each iCCP chunk before the pixels, with no bound on how many: a 1 MiB
    upload of a thousand took 2.3 s of the event loop's CPU. Such a PNG is refused unread."""
    started = time.process_time()
    with pytest.raises(Rejected, match=says) as refused:
        check_image(io.BytesIO(_png_with(chunks)), 10**6)
    assert refused.value.status == 415
    assert time.process_time() - started < 0.5


def test_a_png_with_its_one_profile_and_some_text_is_read() -> None:
    chunks = (
        _chunk(b"iCCP", b"p\0\0" + zlib.compress(b"profile"))
        + _chunk(b"zTXt", b"k\0\0" + ZEROS) * 3
    )
    assert check_image(io.BytesIO(_png_with(chunks)), 10**6) == "png"
