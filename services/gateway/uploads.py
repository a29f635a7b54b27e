"""Uploaded images into the blob store: sniffed, size-limited, and hashed only when the
hash is asked for (an Idempotency-Key's fingerprint).

The request body's own limit (`bodylimit.py`) stops an oversized upload while it streams in;
here the file is checked to be an image the resizer accepts (by its bytes, not by its name
or the client's content type) before it is copied, in chunks, into the blob store.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import BinaryIO

from PIL import Image

from services.gateway.png_chunks import png_refusal
from services.gateway.rejections import Rejected
from shared.blobs import BlobStore, input_key
from shared.errors import BlobError
from shared.files import describe_os_error
from shared.log import get_logger

log = get_logger(__name__)
CHUNK = 1024 * 1024
RETRY_AFTER_S = "30"  # a full disk takes a while to free
ALLOWED = "JPEG, PNG, WebP or GIF"
_PIL_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}
EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp", "gif": "gif"}


@dataclass(frozen=True)
class StoredUpload:
    key: str
    size: int
    format: str
    hexdigest: Callable[[], str] = field(repr=False, compare=False)

    @cached_property
    def sha256(self) -> str:
        """The upload's SHA-256 (hex), worked out when first asked for, while the request
        lasts: only an Idempotency-Key's fingerprint needs it, and a megabyte takes over
        half a millisecond (on the event loop, for an upload held in memory)."""
        return self.hexdigest()


def sniff(head: bytes) -> str | None:
    """The image format the first bytes announce, among those the resizer takes."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def check_image(file: BinaryIO, max_pixels: int) -> str:
    """The file's format if it is an allowed image within the pixel limit; reads the header
    only. Raises Rejected (422 empty, 415 not an allowed image, 422 too many pixels)."""
    head = file.read(16)
    file.seek(0)
    if not head:  # no bytes at all: say so, rather than "not an image"
        raise Rejected(422, "empty_file", "the upload is empty (0 bytes)", field="file")
    fmt = sniff(head)
    if fmt is None:
        raise Rejected(415, "unsupported_media_type", f"file: not an allowed image ({ALLOWED})")
    if fmt == "png" and (why := png_refusal(file)) is not None:
        message = f"file: a PNG this gateway does not read: {why}"
        raise Rejected(415, "unsupported_media_type", message)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(file, formats=[_PIL_FORMATS[fmt]]) as im:
                width, height = im.size
    except Image.DecompressionBombError as e:
        raise _too_many_pixels(max_pixels) from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise Rejected(
            415, "unsupported_media_type", f"file: not a readable {fmt.upper()} image"
        ) from e
    finally:
        file.seek(0)
    if width * height > max_pixels:
        raise _too_many_pixels(max_pixels)
    return fmt


def _too_many_pixels(max_pixels: int) -> Rejected:
    message = f"the image has too many pixels, at most {max_pixels} (MAX_IMAGE_PIXELS)"
    return Rejected(422, "too_many_pixels", message, field="file")


def store_image(
    file: BinaryIO, blobs: BlobStore, job_id: str, *, max_bytes: int, max_pixels: int
) -> StoredUpload:
    """Check the upload and copy it to `inputs/<job id>/input.<ext>`; nothing is left in
    the store when it is refused."""
    fmt = check_image(file, max_pixels)
    if file.seek(0, os.SEEK_END) > max_bytes:  # known already: refused before the store
        raise Rejected(413, "too_large", too_large_message(max_bytes))
    file.seek(0)
    key = input_key(job_id, f"input.{EXTENSIONS[fmt]}")
    size = 0
    with blobs.open_write(key) as out:
        while chunk := file.read(CHUNK):
            size += len(chunk)
            if size > max_bytes:  # open_write keeps nothing of it
                raise Rejected(413, "too_large", too_large_message(max_bytes))
            out.write(chunk)
    # Hashed, if asked, from the upload's own file (the form parser's, open until the
    # request ends): the bytes just stored.
    return StoredUpload(key=key, size=size, format=fmt, hexdigest=partial(_sha256_of_file, file))


def read_image(
    file: BinaryIO, job_id: str, *, max_bytes: int, max_pixels: int
) -> tuple[StoredUpload, bytes]:
    """`store_image` up to the store: the checked upload whole in memory, and what it will be
    stored as. For an upload the form parser kept in memory, on the event loop (its bytes
    then go to `BlobStore.stage_bytes`)."""
    fmt = check_image(file, max_pixels)
    data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise Rejected(413, "too_large", too_large_message(max_bytes))
    key = input_key(job_id, f"input.{EXTENSIONS[fmt]}")
    return StoredUpload(key, len(data), fmt, partial(_sha256_of, data)), data


def _sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sha256_of_file(file: BinaryIO) -> str:
    """The hash of the form's file, read again from its start. That read failing (an I/O
    error of the spool's disk) is the 503 of an upload not stored, as when storing it: the
    request's inputs are discarded and nothing is sent."""
    digest = hashlib.sha256()
    try:
        file.seek(0)
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    except OSError as e:
        raise upload_not_stored(e) from e
    return digest.hexdigest()


def upload_not_stored(error: OSError | BlobError) -> Rejected:
    """The 503 for an upload the blob store did not take, naming the cause (ENOSPC, EDQUOT,
    EROFS, EACCES, a link); nothing of it is kept, and it can be sent again later."""
    cause = describe_os_error(error) if isinstance(error, OSError) else str(error)
    log.error("upload_not_stored", error=cause)
    return Rejected(
        503,
        "blob_store_unavailable",
        f"the upload cannot be stored: {cause}; nothing was kept, try again later",
        headers={"Retry-After": RETRY_AFTER_S},
    )


def too_large_message(max_bytes: int) -> str:
    return f"the upload is larger than {max_bytes} bytes (MAX_UPLOAD_BYTES)"
