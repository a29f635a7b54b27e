"""An output blob as an HTTP download, streamed from the blob store in chunks.

The blob store hands out file objects, never paths, so this is Starlette's FileResponse done
over `BlobStore.open_read`: the same content-type, content-length and content-disposition,
and one byte range (`Range: bytes=…`, 206), so a large download can be resumed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import IO
from urllib.parse import quote

from fastapi.responses import Response, StreamingResponse

from shared.blobs import BlobStore

CHUNK = 256 * 1024
_RANGE = re.compile(r"bytes=(?P<first>\d*)-(?P<last>\d*)")


def blob_download(
    blobs: BlobStore, key: str, media_type: str, range_header: str | None = None
) -> Response:
    """The blob under `key` as an attachment named after the key's last part, whole (200) or
    the one byte range asked for (206; 416 when it lies past the end). BlobError when it is
    missing; a blob that vanishes after that cuts the response short."""
    size = blobs.size(key)
    headers = {
        "accept-ranges": "bytes",
        "content-disposition": content_disposition(PurePosixPath(key).name),
    }
    span = byte_range(range_header, size)
    if span == UNSATISFIABLE:
        return Response(status_code=416, headers={"content-range": f"bytes */{size}"})
    if span is None:
        headers["content-length"] = str(size)
        return StreamingResponse(
            _chunks(blobs, key, 0, size), media_type=media_type, headers=headers
        )
    start, end = span
    headers["content-length"] = str(end - start)
    headers["content-range"] = f"bytes {start}-{end - 1}/{size}"
    body = _chunks(blobs, key, start, end)
    return StreamingResponse(body, status_code=206, media_type=media_type, headers=headers)


UNSATISFIABLE = (-1, -1)


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """[start, end) of the one range a `Range` header asks for; None to send it all (no
    header, several ranges, or one that is not bytes: RFC 9110 lets a server ignore those);
    UNSATISFIABLE when it starts past the end."""
    match = _RANGE.fullmatch((header or "").strip())
    if match is None:
        return None
    first, last = match["first"], match["last"]
    if not first:  # the last N bytes
        suffix = int(last)
        return (max(size - suffix, 0), size) if suffix and size else UNSATISFIABLE
    start = int(first)
    if start >= size:
        return UNSATISFIABLE
    end = min(int(last) + 1, size) if last else size
    return (start, end) if end > start else None


def content_disposition(name: str) -> str:
    """`attachment` with the file name, as FileResponse writes it: RFC 6266's `filename*` in
    UTF-8 when the name needs quoting (non-ASCII, spaces), a plain `filename` otherwise."""
    quoted = quote(name)
    if quoted != name:
        return f"attachment; filename*=utf-8''{quoted}"
    return f'attachment; filename="{name}"'


def _chunks(blobs: BlobStore, key: str, start: int, end: int) -> Iterator[bytes]:
    # Opened when the response starts (as FileResponse opens its file), closed when it ends.
    with blobs.open_read(key) as f:
        if f.seekable():
            f.seek(start)
        else:  # a store that streams only forwards: skip what comes before the range
            _skip(f, start)
        left = end - start
        while left > 0 and (chunk := f.read(min(CHUNK, left))):
            left -= len(chunk)
            yield chunk


def _skip(f: IO[bytes], count: int) -> None:
    while count > 0 and (chunk := f.read(min(CHUNK, count))):
        count -= len(chunk)
