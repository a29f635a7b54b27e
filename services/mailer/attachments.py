"""Gathering a mail's attachments from the blob store.

Two sources, in this order: the mail job's own `inputs` (e.g. the PDF of a render job whose
`then` this mail job is), and the finished outputs of the earlier jobs listed in
`attachments`, found through their manifests.

A listed job without a manifest is a PermanentJobError, not a transient one: the blob store
cannot tell "still running" from "failed" or "never existed", retrying would spend the whole
back-off budget on a typo, and the way to mail a job's outputs when it finishes is `then`.

A mail job with a client may attach only that client's jobs (the manifest names the owner),
whoever placed it on the queue; one without a client (published straight to the broker by
an operator) may attach any. The gateway refuses the same before queueing.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from services.mailer.compose import Attachment
from shared.blobs import BlobStore, manifest_key
from shared.errors import BlobError, PermanentJobError, TransientJobError


def attachment_keys(
    inputs: list[str], job_ids: list[str], blobs: BlobStore, client: str | None = None
) -> list[str]:
    keys = list(inputs)
    for job_id in job_ids:
        keys.extend(_outputs_of(job_id, blobs, client))
    return keys


def load_attachments(
    keys: list[str], blobs: BlobStore, max_bytes: int, body_bytes: int = 0
) -> list[Attachment]:
    """Read every blob, refusing before reading when they and the mail's text and html
    (`body_bytes`) add up to more than `max_bytes` (MAX_MAIL_BYTES)."""
    attached = sum(_size(key, blobs) for key in keys)
    if attached + body_bytes > max_bytes:
        raise PermanentJobError(
            f"the mail comes to {attached + body_bytes} bytes (attachments {attached}, text "
            f"and html {body_bytes}), over the limit of {max_bytes} (MAX_MAIL_BYTES)",
            kind="too_large",
        )
    names = _unique_names([PurePosixPath(key).name for key in keys])
    return [Attachment(name, _read(key, blobs)) for name, key in zip(names, keys, strict=True)]


def _outputs_of(job_id: str, blobs: BlobStore, client: str | None) -> list[str]:
    try:
        manifest_key(job_id)
    except BlobError:
        raise PermanentJobError(
            f"attachments: {job_id!r} is not a job id", kind="missing_attachment"
        ) from None
    try:
        manifest = blobs.read_manifest(job_id)
    except (ValueError, KeyError, TypeError, BlobError) as e:
        raise PermanentJobError(f"job {job_id} has an unreadable manifest: {e}") from e
    except OSError as e:
        raise TransientJobError(f"cannot read the manifest of job {job_id}: {e}") from e
    if manifest is None:
        raise PermanentJobError(
            f"job {job_id} has no finished outputs (unknown, failed or still running; "
            "to mail a job's outputs when it finishes, give the mail as its `then`)",
            kind="missing_attachment",
        )
    if client is not None and manifest.client != client:
        raise PermanentJobError(
            f"attachments: job {job_id} does not belong to the mail's client {client!r}",
            kind="foreign_attachment",
        )
    return manifest.outputs


def _size(key: str, blobs: BlobStore) -> int:
    try:
        return blobs.size(key)
    except BlobError as e:
        raise PermanentJobError(f"attachment {key!r}: {e}", kind="missing_attachment") from e
    except OSError as e:
        raise TransientJobError(f"cannot read attachment {key!r}: {e}") from e


def _read(key: str, blobs: BlobStore) -> bytes:
    try:
        return blobs.read_bytes(key)
    except BlobError as e:
        raise PermanentJobError(f"attachment {key!r}: {e}", kind="missing_attachment") from e
    except OSError as e:
        raise TransientJobError(f"cannot read attachment {key!r}: {e}") from e


def _unique_names(names: list[str]) -> list[str]:
    """Two outputs called `100x100.jpg` become `100x100.jpg` and `100x100-2.jpg`."""
    seen: set[str] = set()
    unique = []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            stem, dot, suffix = name.partition(".")
            candidate = f"{stem}-{n}{dot}{suffix}"
        seen.add(candidate)
        unique.append(candidate)
    return unique
