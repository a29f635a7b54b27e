"""The one place that knows boto3: the S3 client a `BLOB_STORE=s3://…` is reached with, and
botocore's errors turned into ours (`raise … from None`), as `shared/amqp.py` does for pika.

A missing object is a BlobError; anything else that fails (no connection, a timeout, a 5xx,
access denied, a missing bucket) is `BlobStoreUnavailable`, an OSError, a passing fault.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from shared.config import Settings
from shared.errors import BlobError, BlobStoreUnavailable

# A blob store that does not answer within seconds is down for now: the job is retried.
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 30
# botocore's "standard" retry mode: 3 attempts with jittered back-off, on throttling and 5xx.
_RETRIES = {"mode": "standard", "max_attempts": 3}
_MISSING = {"404", "NoSuchKey", "NotFound"}


def s3_client(settings: Settings) -> Any:
    """A client for the settings' S3 store; the credentials and region as set (a `*_FILE`
    secret too), else boto3's own chain (environment, shared files, an instance role)."""
    custom = bool(settings.s3_endpoint_url)
    config = Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries=_RETRIES,  # type: ignore[arg-type]
        # S3-compatible stores (MinIO, Ceph, the tests' moto) answer paths, not bucket names
        # as host names; AWS takes either.
        s3={"addressing_style": "path" if custom else "auto"},
    )
    session = boto3.session.Session()  # sessions are not thread-safe: one of our own
    return session.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url or None,
        verify=settings.s3_ca_bundle or None,
        region_name=settings.aws_region or None,
        aws_access_key_id=settings.aws_access_key_id or None,
        aws_secret_access_key=settings.aws_secret_access_key or None,
        config=config,
    )


def is_missing(error: ClientError) -> bool:
    found = error.response.get("Error", {})
    return str(found.get("Code")) in _MISSING


@contextmanager
def s3_errors(key: str) -> Iterator[None]:
    """botocore's errors inside the block as ours: BlobError for a missing `key`,
    BlobStoreUnavailable (an OSError) for a store that fails."""
    try:
        yield
    except ClientError as e:
        if is_missing(e):
            raise BlobError(f"blob {key!r} does not exist") from None
        raise unavailable(e) from None
    except BotoCoreError as e:
        raise unavailable(e) from None


def unavailable(error: Exception) -> BlobStoreUnavailable:
    """The OSError for a failure of the store, its errno naming the kind of failure."""
    if isinstance(error, ClientError):
        found = error.response.get("Error", {})
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = errno.EACCES if status == 403 else errno.EIO
        text = f"the S3 store answered {status} {found.get('Code', '')}: {found.get('Message', '')}"
        return BlobStoreUnavailable(code, text.strip(": "))
    if isinstance(error, (ConnectTimeoutError, ReadTimeoutError)):
        return BlobStoreUnavailable(errno.ETIMEDOUT, f"the S3 store did not answer: {error}")
    if isinstance(error, EndpointConnectionError):
        return BlobStoreUnavailable(errno.ECONNREFUSED, f"the S3 store is unreachable: {error}")
    return BlobStoreUnavailable(errno.EIO, f"the S3 store failed: {error}")
