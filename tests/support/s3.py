"""An S3 server for the tests: moto's, started as a real process on a loopback port and
reached over HTTP by boto3, as a MinIO or AWS would be (not moto's in-process mocks).

Why moto: it installs from pip (pure Python, no binary to fetch) and keeps every object in
memory, which is all a test needs; a restart loses every object. Each test makes a bucket of
its own (`S3Server.bucket()`), so tests never see each other's blobs.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import TypedDict

import boto3
import httpx

from shared.config import Settings
from tests.support.ports import free_port

# Credentials moto takes (any would do); the region every test bucket is in.
KEY_ID, SECRET, REGION = "testing-key", "testing-secret", "us-east-1"
# Parts as small as this are taken by the server (S3's own least is 5 MiB), so a test
# reaches the multipart path with a few KiB.
MIN_PART_BYTES = 256
_count = itertools.count()


class S3Fields(TypedDict):
    """The Settings fields that put the blob store on a bucket of the server (typed, so
    `replace(settings, **fields)` is checked against Settings)."""

    blob_store: str
    s3_endpoint_url: str
    aws_access_key_id: str
    aws_secret_access_key: str
    aws_region: str


class S3Env(TypedDict):
    """The same fields as a service's environment variables."""

    BLOB_STORE: str
    S3_ENDPOINT_URL: str
    AWS_ACCESS_KEY_ID: str
    AWS_SECRET_ACCESS_KEY: str
    AWS_REGION: str


class S3Server:
    """`python -m moto.server` on 127.0.0.1:<free port>; `stop()` ends it."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log_path.open("wb")
        env = dict(os.environ, S3_UPLOAD_PART_MIN_SIZE=str(MIN_PART_BYTES))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready(log_path)

    def _wait_ready(self, log_path: Path, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"moto's server exited:\n{log_path.read_text()}")
            try:
                httpx.get(self.url + "/moto-api/", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"moto's server did not answer within {timeout}s")

    def client(self) -> object:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
            region_name=REGION,
        )

    def bucket(self) -> str:
        """A new, empty bucket of the test's own."""
        name = f"test-{next(_count)}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)  # type: ignore[attr-defined]
        return name

    def settings(self, base: Settings, bucket: str, prefix: str = "") -> Settings:
        """`base` with BLOB_STORE on `bucket` of this server, and its credentials."""
        return replace(base, **self.env_fields(bucket, prefix))

    def env_fields(self, bucket: str, prefix: str = "") -> S3Fields:
        return {
            "blob_store": f"s3://{bucket}" + (f"/{prefix}" if prefix else ""),
            "s3_endpoint_url": self.url,
            "aws_access_key_id": KEY_ID,
            "aws_secret_access_key": SECRET,
            "aws_region": REGION,
        }

    def env(self, bucket: str, prefix: str = "") -> S3Env:
        """The same as environment variables, for a service process."""
        # Spelled out: a comprehension over a TypedDict's items loses the value type.
        fields = self.env_fields(bucket, prefix)
        return {
            "BLOB_STORE": fields["blob_store"],
            "S3_ENDPOINT_URL": fields["s3_endpoint_url"],
            "AWS_ACCESS_KEY_ID": fields["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": fields["aws_secret_access_key"],
            "AWS_REGION": fields["aws_region"],
        }

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
