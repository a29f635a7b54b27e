"""The blob store (claim check): large data lives here, messages carry only keys.

Services hold a `BlobStore` (`store.py`) from `open_blob_store(settings)` and never learn
what is behind it: a folder shared by every service (`folder.py`, BLOB_DIR or
`BLOB_STORE=file:///path`), or an S3 bucket (`s3.py`, `BLOB_STORE=s3://bucket[/prefix]`).
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
    """The blob store the settings name; the only place that picks an implementation.
    ConfigError when an S3 bucket does not exist (unless S3_CREATE_BUCKET) or is refused."""
    location = settings.blob_location
    if location.folder is not None:
        return FolderBlobStore(location.folder)
    from shared.blobs.s3 import S3BlobStore  # boto3 is imported only where S3 is used
    from shared.blobs.s3_client import s3_client

    store = S3BlobStore(s3_client(settings), location.bucket, location.prefix)
    store.check_bucket(create=settings.s3_create_bucket)
    return store
