"""What only the S3 store shows: multipart uploads, a store that is down, the bucket check at
start, a key prefix, credentials from `*_FILE`, and BLOB_STORE's parsing."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from cli.app import app
from shared.blobs import input_key, open_blob_store, output_key
from shared.blobs.s3 import S3BlobStore
from shared.blobs.s3_client import s3_client
from shared.config import Settings
from shared.errors import BlobError, BlobStoreUnavailable, ConfigError
from tests.support.ports import free_port
from tests.support.s3 import KEY_ID, MIN_PART_BYTES, SECRET, S3Server

PART = 4 * MIN_PART_BYTES


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    return s3_server.bucket()


def _store(s3_server: S3Server, bucket: str, **kw: Any) -> S3BlobStore:
    client = s3_client(s3_server.settings(Settings(), bucket))
    return S3BlobStore(client, bucket, **kw)


def _uploads(s3_server: S3Server, bucket: str) -> list[Any]:
    found = s3_server.client().list_multipart_uploads(Bucket=bucket)  # type: ignore[attr-defined]
    return list(found.get("Uploads", []))


def test_a_blob_larger_than_a_part_goes_up_in_parts(s3_server: S3Server, bucket: str) -> None:
    store = _store(s3_server, bucket, part_bytes=PART)
    data = bytes(range(256)) * (PART * 3 // 256) + b"tail"
    key = output_key("j1", "big.bin")
    with store.open_write(key) as f:
        for start in range(0, len(data), 300):  # writes of any size, not part-aligned
            f.write(data[start : start + 300])
        assert len(_uploads(s3_server, bucket)) == 1  # parts sent, nothing under the key yet
        assert not store.exists(key)
    assert store.read_bytes(key) == data
    head = s3_server.client().head_object(Bucket=bucket, Key=key)  # type: ignore[attr-defined]
    assert head["ETag"].strip('"').endswith("-4")  # a multipart object of 4 parts
    assert _uploads(s3_server, bucket) == []


def test_a_failed_multipart_write_is_aborted_and_leaves_nothing(
    s3_server: S3Server, bucket: str
) -> None:
    store = _store(s3_server, bucket, part_bytes=PART)
    key = output_key("j1", "big.bin")
    with pytest.raises(RuntimeError), store.open_write(key) as f:
        f.write(b"x" * (PART * 2 + 1))
        assert len(_uploads(s3_server, bucket)) == 1
        raise RuntimeError("writer died")
    assert not store.exists(key)
    assert store.list("outputs") == []
    assert _uploads(s3_server, bucket) == []  # the parts sent are dropped too


def test_a_small_blob_is_one_put(s3_server: S3Server, bucket: str) -> None:
    store = _store(s3_server, bucket, part_bytes=PART)
    key = store.write_bytes(output_key("j1", "a.bin"), b"x" * (PART - 1))
    head = s3_server.client().head_object(Bucket=bucket, Key=key)  # type: ignore[attr-defined]
    assert "-" not in head["ETag"]


def test_a_store_that_is_down_is_an_os_error_not_a_blob_error(tmp_path: Path) -> None:
    down = Settings(
        blob_store="s3://no-server",
        s3_endpoint_url=f"http://127.0.0.1:{free_port()}",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        aws_region="us-east-1",
    )
    store = open_blob_store(down)  # unreachable at start: left to the readiness check
    key = input_key("j1", "a.png")
    for call in (
        lambda: store.read_bytes(key),
        lambda: store.size(key),
        lambda: store.exists(key),
        lambda: store.write_bytes(key, b"a"),
        lambda: store.list("inputs"),
        lambda: store.read_manifest("j1"),
    ):
        with pytest.raises(OSError) as caught:
            call()
        assert isinstance(caught.value, BlobStoreUnavailable)
        assert not isinstance(caught.value, BlobError)
    reason = store.check_writable()
    assert reason is not None and "ECONNREFUSED" in reason


def test_a_server_error_is_an_os_error(s3_server: S3Server, bucket: str) -> None:
    store = _store(s3_server, bucket)
    client = store._client

    def fail(**kw: Any) -> None:
        from botocore.exceptions import ClientError

        raise ClientError(
            {
                "Error": {"Code": "InternalError", "Message": "We encountered an internal error"},
                "ResponseMetadata": {"HTTPStatusCode": 500},
            },
            "GetObject",
        )

    client.get_object = fail
    with pytest.raises(BlobStoreUnavailable, match="500 InternalError"):
        store.read_bytes(input_key("j1", "a.png"))


def test_a_missing_bucket_stops_the_service_at_start(s3_server: S3Server) -> None:
    settings = s3_server.settings(Settings(), "never-made")
    with pytest.raises(ConfigError, match="bucket 'never-made' does not exist"):
        open_blob_store(settings)


def test_s3_create_bucket_makes_it(s3_server: S3Server) -> None:
    settings = replace(s3_server.settings(Settings(), "made-at-start"), s3_create_bucket=True)
    store = open_blob_store(settings)
    assert store.check_writable() is None
    store.write_bytes(input_key("j1", "a.png"), b"a")
    assert open_blob_store(settings).read_bytes(input_key("j1", "a.png")) == b"a"


def test_blobs_live_under_the_prefix(s3_server: S3Server, bucket: str) -> None:
    store = open_blob_store(s3_server.settings(Settings(), bucket, "team/a"))
    other = open_blob_store(s3_server.settings(Settings(), bucket, "team/b"))
    key = store.write_bytes(input_key("j1", "a.png"), b"a")
    listed = s3_server.client().list_objects_v2(Bucket=bucket)  # type: ignore[attr-defined]
    assert [o["Key"] for o in listed["Contents"]] == ["team/a/inputs/j1/a.png"]
    assert store.list("inputs") == [key]
    assert other.list("inputs") == [] and not other.exists(key)


def test_the_secret_key_may_come_from_a_file(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    (tmp_path / "secret").write_text(SECRET + "\n")
    env = {
        "BLOB_STORE": f"s3://{bucket}",
        "S3_ENDPOINT_URL": s3_server.url,
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY_FILE": str(tmp_path / "secret"),
        "AWS_REGION": "us-east-1",
    }
    settings = Settings.from_env(env)
    assert settings.aws_secret_access_key == SECRET
    assert SECRET not in repr(settings)
    credentials = s3_client(settings)._request_signer._credentials
    assert (credentials.access_key, credentials.secret_key) == (KEY_ID, SECRET)
    store = open_blob_store(settings)
    assert store.read_bytes(store.write_bytes(input_key("j1", "a.png"), b"a")) == b"a"


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("s3://", "must name an S3 bucket"),
        ("s3://Upper", "must name an S3 bucket"),
        ("s3://bucket/../x", "not a plain path"),
        ("s3://bucket/.hidden", "not a plain path"),
        ("s3://bucket?x=1", "no query"),
        ("file://relative/path", "absolute folder"),
        ("ftp://host/x", "must be empty"),
        ("/just/a/path", "must be empty"),
    ],
)
def test_a_bad_blob_store_url_is_a_configuration_error(raw: str, error: str) -> None:
    with pytest.raises(ConfigError, match=f"BLOB_STORE .*{error}"):
        Settings.from_env({"BLOB_STORE": raw})


def test_the_state_folder_may_not_lie_in_a_file_url_store(tmp_path: Path) -> None:
    env = {"BLOB_STORE": (tmp_path / "b").as_uri(), "STATE_DIR": str(tmp_path / "b" / "state")}
    with pytest.raises(ConfigError, match="STATE_DIR must not be inside BLOB_STORE"):
        Settings.from_env(env)


def test_a_writer_may_not_seek_back_into_a_part_already_sent(
    s3_server: S3Server, bucket: str
) -> None:
    store = _store(s3_server, bucket, part_bytes=PART)
    key = output_key("j1", "big.bin")
    with pytest.raises(io.UnsupportedOperation, match="sent"), store.open_write(key) as f:
        f.write(b"x" * (PART + 10))
        f.seek(PART + 1)  # in what is not sent yet: fine
        f.seek(0)
    assert not store.exists(key) and _uploads(s3_server, bucket) == []


def test_a_blob_the_store_would_not_delete_is_an_os_error(s3_server: S3Server, bucket: str) -> None:
    store = _store(s3_server, bucket)
    store.write_bytes(output_key("j1", "a.png"), b"a")
    client = store._client

    def refuse(**kw: Any) -> dict[str, Any]:
        return {"Errors": [{"Key": "outputs/j1/a.png", "Code": "AccessDenied"}]}

    client.delete_objects = refuse
    with pytest.raises(BlobStoreUnavailable, match=r"kept 1 blobs.*AccessDenied"):
        store.delete_prefix("outputs/j1")


def test_jobsuite_enqueue_says_in_one_line_that_the_bucket_is_missing(
    s3_server: S3Server, tmp_path: Path
) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8")
    env = {**s3_server.env("never-made"), "JOBSUITE_HOME": str(tmp_path)}
    done = CliRunner().invoke(app, ["enqueue", str(photo), "--width", "10"], env=env)
    assert done.exit_code == 1, done.output
    assert "cannot store the input: BLOB_STORE: the bucket 'never-made' does not exist" in (
        " ".join(done.output.split())
    )


class _RacedClient:
    """An S3 client whose bucket another replica makes between our check and our create; the
    create then answers as MinIO (and AWS outside us-east-1) do, where moto's us-east-1 says
    200."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.meta = client.meta

    def head_bucket(self, Bucket: str) -> None:
        self._client.create_bucket(Bucket=Bucket)
        raise ClientError(
            {"Error": {"Code": "404"}, "ResponseMetadata": {"HTTPStatusCode": 404}}, "HeadBucket"
        )

    def create_bucket(self, Bucket: str) -> None:
        self._client.head_bucket(Bucket=Bucket)
        raise ClientError(
            {
                "Error": {"Code": "BucketAlreadyOwnedByYou", "Message": "already yours"},
                "ResponseMetadata": {"HTTPStatusCode": 409},
            },
            "CreateBucket",
        )


def test_replicas_that_race_to_create_the_bucket_all_start(s3_server: S3Server) -> None:
    settings = s3_server.settings(Settings(), "made-by-two")
    store = S3BlobStore(_RacedClient(s3_client(settings)), "made-by-two")
    store.check_bucket(create=True)  # the loser of the race finds it made: no error
    assert s3_server.client().head_bucket(Bucket="made-by-two")  # type: ignore[attr-defined]
