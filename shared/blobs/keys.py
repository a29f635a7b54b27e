"""Blob keys: relative POSIX paths such as `inputs/<job id>/photo.jpg`, checked before use.

Every part is a plain name (letters, digits, `.`, `_`, `-`, not starting with a dot), so a
key can name neither a parent folder nor an absolute path nor a hidden temp file, in a folder
or as an object store's key alike.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from shared.errors import BlobError

_SAFE_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
MANIFEST_NAME = "manifest.json"


def validate_key(key: str) -> str:
    """Return `key` if it is a safe relative path, else raise BlobError."""
    parts = key.split("/")
    # fullmatch: with match(), `$` also matches before a final newline ("a.png\n")
    if not key or any(not _SAFE_PART.fullmatch(p) for p in parts):
        raise BlobError(f"invalid blob key {key!r}")
    return key


def input_key(job_id: str, name: str) -> str:
    return validate_key(f"inputs/{job_id}/{name}")


def output_key(job_id: str, name: str) -> str:
    return validate_key(f"outputs/{job_id}/{name}")


def manifest_key(job_id: str) -> str:
    return output_key(job_id, MANIFEST_NAME)


@dataclass(frozen=True)
class Manifest:
    """A finished job's outputs and its owner (the `client` of the job; None: admin-only),
    so results are served, and attachments checked, without asking the audit."""

    outputs: list[str]
    client: str | None = None


def encode_manifest(outputs: list[str], client: str | None = None) -> bytes:
    body: dict[str, object] = {"outputs": outputs}
    if client is not None:
        body["client"] = client
    return json.dumps(body).encode()


def decode_manifest(data: bytes) -> Manifest | None:
    """The manifest, or None when it is torn or not a manifest at all."""
    try:
        found = json.loads(data)
        client = found.get("client")
        if client is not None and not isinstance(client, str):
            return None
        return Manifest([str(o) for o in found["outputs"]], client)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
