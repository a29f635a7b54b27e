"""`BLOB_STORE` as typed: empty (the folder BLOB_DIR), `file:///path` or
`s3://bucket[/prefix]`, parsed into where the blob store is (pure; `shared.config` checks it
at start, `shared.blobs.open_blob_store` opens it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

# S3's rules for a bucket name: 3 to 63 lower-case letters, digits, dots and hyphens.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# A prefix is made of the parts a blob key is made of (shared/blobs/keys.py).
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


@dataclass(frozen=True)
class BlobLocation:
    """A folder (`folder` set) or an S3 bucket with a key prefix (`bucket` set)."""

    folder: Path | None = None
    bucket: str = ""
    prefix: str = ""  # "" or "a/b", without slashes around it


def parse_blob_store(raw: str) -> str:
    """The BLOB_STORE parser: the value if `blob_location` takes it (ValueError otherwise)."""
    blob_location(raw)
    return raw


def blob_location(raw: str, blob_dir: Path = Path("var/blobs")) -> BlobLocation:
    if not raw:
        return BlobLocation(folder=blob_dir)
    url = urlsplit(raw)
    if url.scheme == "file":
        if url.netloc not in ("", "localhost") or not url.path.startswith("/"):
            raise ValueError("must name an absolute folder, `file:///path`")
        return BlobLocation(folder=Path(unquote(url.path)))
    if url.scheme == "s3":
        if not _BUCKET.fullmatch(url.netloc) or ".." in url.netloc:
            raise ValueError("must name an S3 bucket: 3 to 63 of a-z, 0-9, `.` and `-`")
        if url.query or url.fragment:
            raise ValueError("takes no query or fragment, `s3://bucket[/prefix]`")
        prefix = url.path.strip("/")
        if prefix and not all(_PART.fullmatch(p) for p in prefix.split("/")):
            raise ValueError("has a prefix that is not a plain path (letters, digits, . _ -)")
        return BlobLocation(bucket=url.netloc, prefix=prefix)
    raise ValueError("must be empty (BLOB_DIR), `file:///path` or `s3://bucket[/prefix]`")
