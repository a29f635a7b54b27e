"""A result download streams from the blob store with the headers FileResponse sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI, Header
from fastapi.responses import FileResponse
from fastapi.testclient import TestClient

from services.gateway.downloads import blob_download, content_disposition
from shared.blobs import FolderBlobStore, output_key
from shared.errors import BlobError

HEADERS = ("content-type", "content-length", "content-disposition")


@pytest.mark.parametrize(
    ("key", "media_type"),
    [
        ("outputs/j1/invoice.pdf", "application/pdf"),
        ("outputs/j1/notes.txt", "text/plain"),
        ("outputs/j1/a/200x100.png", "image/png"),
    ],
)
def test_a_download_has_the_headers_and_bytes_of_a_file_response(
    tmp_path: Path, key: str, media_type: str
) -> None:
    blobs = FolderBlobStore(tmp_path)
    data = bytes(range(256)) * 4096  # several chunks
    blobs.write_bytes(key, data)
    app = FastAPI()
    app.get("/streamed")(lambda: blob_download(blobs, key, media_type))
    name = key.rsplit("/", 1)[-1]
    app.get("/file")(lambda: FileResponse(tmp_path / key, media_type=media_type, filename=name))
    with TestClient(app, base_url="http://localhost") as http:
        streamed, file = http.get("/streamed"), http.get("/file")
    assert streamed.content == file.content == data
    assert [streamed.headers[h] for h in HEADERS] == [file.headers[h] for h in HEADERS]


@pytest.mark.parametrize("name", ["invoice.pdf", "Rechnung Nr 7.pdf", "résumé.pdf", "счёт.pdf"])
def test_the_file_name_is_given_as_file_response_gives_it(tmp_path: Path, name: str) -> None:
    (tmp_path / "f").write_bytes(b"x")
    expected = FileResponse(tmp_path / "f", filename=name).headers["content-disposition"]
    assert content_disposition(name) == expected


def test_a_missing_blob_is_a_blob_error_before_any_response(tmp_path: Path) -> None:
    with pytest.raises(BlobError, match="does not exist"):
        blob_download(FolderBlobStore(tmp_path), output_key("j1", "gone.pdf"), "application/pdf")


@pytest.mark.parametrize(
    "asked",
    ["bytes=0-99", "bytes=1000-", "bytes=-500", "bytes=4000-999999", "bytes=1048575-1048575"],
)
def test_one_byte_range_is_served_as_file_response_serves_it(tmp_path: Path, asked: str) -> None:
    key = "outputs/j1/big.bin"
    blobs = FolderBlobStore(tmp_path)
    data = bytes(range(256)) * 4096
    blobs.write_bytes(key, data)
    app = FastAPI()

    @app.get("/streamed")
    def streamed_route(range: str | None = Header(default=None)) -> object:
        return blob_download(blobs, key, "application/octet-stream", range)

    app.get("/file")(lambda: FileResponse(tmp_path / key))
    with TestClient(app, base_url="http://localhost") as http:
        streamed = http.get("/streamed", headers={"range": asked})
        file = http.get("/file", headers={"range": asked})
    assert streamed.status_code == file.status_code == 206
    assert streamed.content == file.content
    for header in ("content-range", "content-length", "accept-ranges"):
        assert streamed.headers[header] == file.headers[header], header


@pytest.mark.parametrize(("asked", "status"), [("bytes=5000000-", 416), ("bytes=0-1,5-6", 200)])
def test_a_range_past_the_end_is_416_and_several_ranges_get_the_whole_file(
    tmp_path: Path, asked: str, status: int
) -> None:
    blobs = FolderBlobStore(tmp_path)
    blobs.write_bytes("outputs/j1/a.bin", b"x" * 1000)
    response = blob_download(blobs, "outputs/j1/a.bin", "application/octet-stream", asked)
    assert response.status_code == status
    if status == 416:
        assert response.headers["content-range"] == "bytes */1000"
