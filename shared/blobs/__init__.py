"""The blob store (claim check): large data lives here, messages carry only keys.

Services hold a `BlobStore` (`store.py`) from `open_blob_store(settings)` and never learn
what is behind it: today a folder shared by every service (`folder.py`, BLOB_DIR).
"""

from __future__ import annotations

from shared.blobs.folder import FolderBlobStore
from shared.blobs.keys import MANIFEST_NAME, input_key, manifest_key, output_key, validate_key
from shared.blobs.store import BlobStore
from shared.config import Settings

__all__ = [
    "MANIFEST_NAME",
    "BlobStore",
    "FolderBlobStore",
    "input_key",
    "manifest_key",
    "open_blob_store",
    "output_key",
    "validate_key",
]


def open_blob_store(settings: Settings) -> BlobStore:
    """The blob store the settings name; the only place that picks an implementation."""
    return FolderBlobStore(settings.blob_dir)
