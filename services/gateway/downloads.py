"""An output blob as an HTTP download, streamed from the blob store in chunks.

The blob store hands out file objects, never paths, so this is Starlette's FileResponse done
over `BlobStore.open_read`: the same content-type, content-length and content-disposition.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath
from urllib.parse import quote

from fastapi.responses import StreamingResponse

from shared.blobs import BlobStore

CHUNK = 256 * 1024


def blob_download(blobs: BlobStore, key: str, media_type: str) -> StreamingResponse:
    """The blob under `key` as an attachment named after the key's last part. BlobError when
    it is missing; a blob that vanishes after that cuts the response short."""
    headers = {
        "content-length": str(blobs.size(key)),
        "content-disposition": content_disposition(PurePosixPath(key).name),
    }
    return StreamingResponse(_chunks(blobs, key), media_type=media_type, headers=headers)


def content_disposition(name: str) -> str:
    """`attachment` with the file name, as FileResponse writes it: RFC 6266's `filename*` in
    UTF-8 when the name needs quoting (non-ASCII, spaces), a plain `filename` otherwise."""
    quoted = quote(name)
    if quoted != name:
        return f"attachment; filename*=utf-8''{quoted}"
    return f'attachment; filename="{name}"'


def _chunks(blobs: BlobStore, key: str) -> Iterator[bytes]:
    # Opened when the response starts (as FileResponse opens its file), closed when it ends.
    with blobs.open_read(key) as f:
        while chunk := f.read(CHUNK):
            yield chunk
