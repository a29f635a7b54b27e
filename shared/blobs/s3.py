"""The blob store as an S3 bucket (`BLOB_STORE=s3://bucket[/prefix]`): AWS or any
S3-compatible store (MinIO, Ceph; the tests use moto's server).

A key is an object named `<prefix>/<key>`. The `BlobStore` guarantees, as S3 gives them:
- every key is checked with `validate_key` first;
- a write is atomic: S3 shows an object only once its PUT, or the completion of its multipart
  upload, succeeded, and the writer completes only when its block ends cleanly (it aborts the
  upload otherwise), so a failed writer leaves nothing under the key;
- the manifest is an object written after the outputs, and S3 reads are strongly consistent
  after writes: its presence still means every output is there;
- links: an object store has none, so nothing is reached through one, trivially;
- errors: a missing object is a BlobError; a store that fails is `BlobStoreUnavailable`, an
  OSError, a passing fault (`s3_client.py`).
"""

from __future__ import annotations

import builtins
import errno
import io
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import IO, Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from shared.blobs.keys import Manifest, decode_manifest, encode_manifest, manifest_key, validate_key
from shared.blobs.s3_client import s3_errors, unavailable
from shared.blobs.s3_io import PART_BYTES, S3Reader, S3Writer
from shared.errors import BlobError, BlobStoreUnavailable, ConfigError
from shared.files import describe_os_error

# The readiness probe's object: a name no key can have (a key's parts never start with a dot).
_PROBE = ".jobsuite-probe"
_READ_BUFFER = 256 * 1024
# How long a result's presigned URL works (RESULT_REDIRECT): enough to start a download.
DOWNLOAD_URL_S = 300


class S3BlobStore:
    """Blobs as objects in one bucket under a prefix (a `BlobStore`, `shared/blobs/store.py`)."""

    def __init__(
        self, client: Any, bucket: str, prefix: str = "", *, part_bytes: int = PART_BYTES
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self._part_bytes = part_bytes
        self._probe_lock = threading.Lock()
        self._last_probe: tuple[float, str | None] | None = None

    def __repr__(self) -> str:
        return f"S3BlobStore('s3://{self._bucket}/{self._prefix}')"

    def check_bucket(self, *, create: bool = False) -> None:
        """At start: ConfigError when the bucket does not exist (made when `create`) or this
        caller may not use it; a store that does not answer is left to the readiness check."""
        try:
            self._client.head_bucket(Bucket=self._bucket)
        except ClientError as e:
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404 and create:
                self._create_bucket()
            elif status == 404:
                raise ConfigError(
                    f"BLOB_STORE: the bucket {self._bucket!r} does not exist (create it, or"
                    " set S3_CREATE_BUCKET=true)"
                ) from None
            elif status == 403:
                raise ConfigError(
                    f"BLOB_STORE: access to the bucket {self._bucket!r} is denied (check"
                    " AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
                ) from None
        except BotoCoreError:
            pass  # unreachable for now: /readyz says so, jobs retry

    def _create_bucket(self) -> None:
        region = self._client.meta.region_name
        extra: dict[str, Any] = {}
        if region and region != "us-east-1":
            extra["CreateBucketConfiguration"] = {"LocationConstraint": region}
        with s3_errors(self._bucket):
            try:
                self._client.create_bucket(Bucket=self._bucket, **extra)
            except ClientError as e:
                # Replicas starting at once race to make it: the one that loses finds it made.
                if e.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                    raise

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except BlobError:
            validate_key(key)  # a bad key is still an error, not "absent"
            return False
        return True

    def size(self, key: str) -> int:
        with s3_errors(key):
            found = self._client.head_object(Bucket=self._bucket, Key=self._name(key))
        return int(found["ContentLength"])

    @contextmanager
    def open_read(self, key: str) -> Iterator[IO[bytes]]:
        raw = S3Reader(self._client, self._bucket, self._name(key), key)
        with io.BufferedReader(raw, buffer_size=_READ_BUFFER) as f:
            yield f

    def read_bytes(self, key: str) -> bytes:
        with self.open_read(key) as f:
            return f.read()

    def open_write(self, key: str) -> AbstractContextManager[IO[bytes]]:
        return self._write(key)

    @contextmanager
    def _write(self, key: str) -> Iterator[IO[bytes]]:
        writer = S3Writer(self._client, self._bucket, self._name(key), key, self._part_bytes)
        try:
            yield cast(IO[bytes], writer)
        except BaseException:
            writer.abort()
            raise
        try:
            writer.finish()
        except BaseException:
            writer.abort()
            raise

    def write_bytes(self, key: str, data: bytes) -> str:
        with self.open_write(key) as f:
            f.write(data)
        return key

    def stage_bytes(self, key: str, data: bytes) -> StagedObject:
        validate_key(key)
        return StagedObject(self, key, data)

    def list(self, prefix: str) -> builtins.list[str]:
        return sorted(key for key, _at in self._objects(prefix))

    def list_modified(self, prefix: str) -> builtins.list[tuple[str, datetime]]:
        """Each object's LastModified (list_objects_v2 has it: no request per object)."""
        return sorted(self._objects(prefix))

    def delete_prefix(self, prefix: str) -> None:
        names = [self._name(key) for key, _at in self._objects(prefix)]
        for start in range(0, len(names), 1000):  # DeleteObjects takes 1000 at most
            batch = [{"Key": name} for name in names[start : start + 1000]]
            with s3_errors(prefix):
                answer = self._client.delete_objects(
                    Bucket=self._bucket, Delete={"Objects": batch, "Quiet": True}
                )
            if failed := answer.get("Errors"):  # each object has its own answer
                first = failed[0]
                raise BlobStoreUnavailable(
                    errno.EIO,
                    f"the S3 store kept {len(failed)} blobs under {prefix!r}: {first.get('Key')}"
                    f" {first.get('Code')} {first.get('Message', '')}".rstrip(),
                )

    def read_manifest(self, job_id: str) -> Manifest | None:
        key = manifest_key(job_id)  # a bad job id is a BlobError, not "unfinished"
        try:
            data = self.read_bytes(key)
        except BlobError:
            return None
        return decode_manifest(data)

    def write_manifest(
        self, job_id: str, outputs: builtins.list[str], client: str | None = None
    ) -> None:
        self.write_bytes(manifest_key(job_id), encode_manifest(outputs, client))

    def download_url(self, key: str, *, disposition: str, media_type: str) -> str | None:
        """A presigned GET of the object, valid DOWNLOAD_URL_S seconds, answering with the
        given Content-Type and Content-Disposition. Signed locally: only the existence check
        asks the store."""
        self.size(key)
        with s3_errors(key):
            return str(
                self._client.generate_presigned_url(
                    "get_object",
                    Params={
                        "Bucket": self._bucket,
                        "Key": self._name(key),
                        "ResponseContentType": media_type,
                        "ResponseContentDisposition": disposition,
                    },
                    ExpiresIn=DOWNLOAD_URL_S,
                )
            )

    def check_writable(self) -> str | None:
        """A real PUT and DELETE of a small object, at most once a second (the last answer in
        between): a bucket gone, read-only credentials or a store down say so."""
        with self._probe_lock:
            now = time.monotonic()
            if self._last_probe is None or now - self._last_probe[0] >= 1.0:
                self._last_probe = (now, self._probe())
            return self._last_probe[1]

    def _probe(self) -> str | None:
        name = f"{self._prefix}{_PROBE}/{uuid.uuid4().hex}"
        try:
            self._client.put_object(Bucket=self._bucket, Key=name, Body=b"\0" * 64)
            self._client.delete_object(Bucket=self._bucket, Key=name)
        except (ClientError, BotoCoreError) as e:
            cause = describe_os_error(unavailable(e))
            return f"the S3 bucket {self._bucket!r} takes no writes: {cause}"
        return None

    def _name(self, key: str) -> str:
        return self._prefix + validate_key(key)

    def _objects(self, prefix: str) -> Iterator[tuple[str, datetime]]:
        """The keys under a folder-like prefix with their LastModified (objects whose names
        are not keys, such as a probe's, are skipped)."""
        start = self._name(prefix) + "/"
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=start
        )
        with s3_errors(prefix):
            for page in pages:
                for found in page.get("Contents", []):
                    key = found["Key"][len(self._prefix) :]
                    try:
                        yield validate_key(key), _utc(found["LastModified"])
                    except BlobError:
                        continue


class StagedObject:
    """An object to PUT: S3 has nothing to stage, so `commit()` does the whole write."""

    def __init__(self, store: S3BlobStore, key: str, data: bytes) -> None:
        self._store = store
        self._key = key
        self._data: bytes | None = data

    def commit(self) -> None:
        if self._data is None:
            raise RuntimeError(f"{self._key}: committed or discarded already")
        data, self._data = self._data, None
        self._store.write_bytes(self._key, data)

    def discard(self) -> None:
        self._data = None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
