"""A finished job's output files for the console: listed from its manifest in the blob store
(read only), previewed when they are images, served for download. The console's only window
on the blob store; without one (the audit was given none) it lists outputs by name only."""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from dataclasses import dataclass

from shared.blobs import BlobStore
from shared.errors import BlobError

CHUNK = 64 * 1024
# What the browser may show inline; anything else is a download. No SVG: it can carry script;
# no PDF: it is served under CSP `sandbox`, where a browser's PDF viewer does not run.
INLINE = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})


@dataclass(frozen=True)
class OutputFile:
    name: str
    key: str
    size: int | None  # None: listed in the manifest, gone from the store
    content_type: str

    @property
    def image(self) -> bool:
        return self.content_type.startswith("image/") and self.content_type in INLINE


def output_files(blobs: BlobStore, job_id: str) -> list[OutputFile] | None:
    """The job's outputs as its manifest lists them; None when it has no manifest (not
    finished, deleted, past retention) or the store cannot be read."""
    try:
        manifest = blobs.read_manifest(job_id)
    except BlobError:
        return None
    if manifest is None:
        return None
    files = []
    for key in manifest.outputs:
        try:
            size: int | None = blobs.size(key)
        except BlobError:
            size = None
        files.append(OutputFile(_name(job_id, key), key, size, content_type(key)))
    return files


def chunks(blobs: BlobStore, key: str) -> Iterator[bytes]:
    with blobs.open_read(key) as f:
        while block := f.read(CHUNK):
            yield block


def content_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


def _name(job_id: str, key: str) -> str:
    # The same names as the gateway's GET /jobs/{id}/result/{name}.
    return key.removeprefix(f"outputs/{job_id}/").replace("/", "_")
