"""File objects over S3 objects: a reader that streams the object's body (and seeks with a
ranged GET), and a writer that sends one PUT, or a multipart upload above a part's size,
completed only when the writer's block ends cleanly."""

from __future__ import annotations

import contextlib
import errno
import io
from typing import TYPE_CHECKING, Any

from shared.blobs.s3_client import s3_errors
from shared.errors import BlobStoreUnavailable

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

# Parts of a multipart upload (S3 takes 5 MiB at least, but for the last); a blob smaller
# than one part is sent with one PUT.
PART_BYTES = 8 * 1024 * 1024
_READALL_PIECE = 1024 * 1024


class S3Reader(io.RawIOBase):
    """The object `key` read as it streams in: one GET, a ranged GET again after a seek. Every
    GET after the first asks for the same version (If-Match its ETag): an object replaced
    meanwhile is a failure of the read, never a mix of two blobs."""

    def __init__(self, client: Any, bucket: str, name: str, key: str) -> None:
        super().__init__()
        self._client, self._bucket, self._name, self._key = client, bucket, name, key
        with s3_errors(key):
            found = client.get_object(Bucket=bucket, Key=name)
        self._body: Any = found["Body"]
        self._etag: str = found["ETag"]
        self._size: int = found["ContentLength"]
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        target = base + offset
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        if target != self._pos:
            self._drop_body()
            self._pos = target
        return self._pos

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        if self._pos >= self._size or not len(view):
            return 0
        with s3_errors(self._key):
            if self._body is None:
                self._body = self._client.get_object(
                    Bucket=self._bucket,
                    Key=self._name,
                    Range=f"bytes={self._pos}-",
                    IfMatch=self._etag,
                )["Body"]
            data = self._body.read(min(len(view), self._size - self._pos))
        if not data:
            raise BlobStoreUnavailable(errno.EIO, f"blob {self._key!r} was cut short")
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def readall(self) -> bytes:
        """The rest of the blob, read in large pieces (RawIOBase's own reads 8 KiB a time)."""
        pieces = []
        while chunk := self.read(_READALL_PIECE):
            pieces.append(chunk)
        return b"".join(pieces)

    def close(self) -> None:
        self._drop_body()
        super().close()

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None


class S3Writer(io.RawIOBase):
    """Collects what is written; `finish` stores it under the key (one PUT, or the parts of a
    multipart upload and its completion), `abort` drops it (and the parts sent so far).

    A whole part is sent as soon as it is written, so a large blob never sits in memory.
    `tell` works throughout, and `seek` (an encoder patching a header) within what has not
    been sent yet: the whole of a blob smaller than a part; before that it is
    io.UnsupportedOperation."""

    def __init__(
        self, client: Any, bucket: str, name: str, key: str, part_bytes: int = PART_BYTES
    ) -> None:
        super().__init__()
        self._client, self._bucket, self._name, self._key = client, bucket, name, key
        self._part_bytes = part_bytes
        self._buffer = bytearray()  # what follows the parts sent
        self._sent = 0  # bytes in the parts sent
        self._pos = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        end = self._sent + len(self._buffer)
        target = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: end}[whence] + offset
        if target < self._sent or target < 0:
            raise io.UnsupportedOperation(
                f"seek to {target}: the first {self._sent} bytes of {self._key!r} are sent"
            )
        self._pos = target
        return target

    def write(self, data: ReadableBuffer) -> int:
        chunk = memoryview(data).cast("B")
        at = self._pos - self._sent
        if at > len(self._buffer):  # written past the end: the gap reads as zeros, as in a file
            self._buffer += bytes(at - len(self._buffer))
        self._buffer[at : at + len(chunk)] = chunk
        self._pos += len(chunk)
        while self._pos - self._sent >= self._part_bytes:  # whole parts behind the position
            part = bytes(self._buffer[: self._part_bytes])
            self._send_part(part)
            del self._buffer[: self._part_bytes]
            self._sent += len(part)
        return len(chunk)

    def finish(self) -> None:
        with s3_errors(self._key):
            if self._upload_id is None:
                self._client.put_object(
                    Bucket=self._bucket, Key=self._name, Body=bytes(self._buffer)
                )
            else:
                if self._buffer or not self._parts:
                    self._send_part(bytes(self._buffer))
                self._client.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=self._name,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
                self._upload_id = None
        self._buffer.clear()

    def abort(self) -> None:
        """Nothing of it is stored; a store that fails meanwhile keeps only parts, never an
        object under the key (a bucket lifecycle rule removes abandoned parts)."""
        self._buffer.clear()
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            # the writer's own error is the one to raise, not this one's
            with contextlib.suppress(Exception):
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=self._name, UploadId=upload_id
                )

    def _send_part(self, part: bytes) -> None:
        with s3_errors(self._key):
            if self._upload_id is None:
                started = self._client.create_multipart_upload(Bucket=self._bucket, Key=self._name)
                self._upload_id = started["UploadId"]
            number = len(self._parts) + 1
            sent = self._client.upload_part(
                Bucket=self._bucket,
                Key=self._name,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=part,
            )
        self._parts.append({"PartNumber": number, "ETag": sent["ETag"]})
