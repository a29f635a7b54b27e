"""The end-to-end load's lean HTTP client (benchmarks/lean_http.py) against a real HTTP/1.1
server on loopback: the bytes httpx would send, answers read on one kept-alive connection,
a connection the server closes opened again, an answer it cannot frame refused."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import pytest

from benchmarks.lean_http import Connection, prepare


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the answer says otherwise
    connections: ClassVar[set[int]] = set()  # client ports seen: one per connection

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Echo.connections.add(self.client_address[1])
        if self.path == "/unframed":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"no length")
            self.close_connection = True
            return
        answer = json.dumps(
            {
                "path": self.path,
                "type": self.headers["Content-Type"],
                "key": self.headers["Authorization"],
                "sha256": hashlib.sha256(body).hexdigest(),
            }
        ).encode()
        self.send_response(202 if self.path != "/close" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        if self.path == "/close":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Echo.connections.clear()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_prepared_upload_is_the_request_httpx_builds_sent_again_on_one_connection(
    server: str,
) -> None:
    files = {"file": ("bench.jpg", b"\xff\xd8jpeg bytes", "image/jpeg")}
    form = {"sizes": ["640", "160"], "format": "webp"}
    key = {"Authorization": "Bearer jsk_test"}
    request = prepare(server, "POST", "/jobs/resize", key, files=files, data=form)
    built = httpx.Request("POST", f"{server}/jobs/resize", headers=key, files=files, data=form)
    with Connection(server) as http:
        replies = [http.send(request) for _ in range(3)]
    assert [r.status_code for r in replies] == [202, 202, 202]
    echoed = replies[0].json()
    assert echoed["path"] == "/jobs/resize"
    assert echoed["key"] == "Bearer jsk_test"
    assert echoed["type"].startswith("multipart/form-data; boundary=")
    assert echoed["sha256"] == hashlib.sha256(request.data.split(b"\r\n\r\n", 1)[1]).hexdigest()
    assert len(request.data.split(b"\r\n\r\n", 1)[1]) == len(built.read())
    assert len(Echo.connections) == 1  # kept alive


def test_a_connection_the_server_closes_is_opened_again(server: str) -> None:
    closing = prepare(server, "POST", "/close", json={"a": 1})
    again = prepare(server, "POST", "/jobs/render", json={"template": "document"})
    with Connection(server) as http:
        assert http.send(closing).status_code == 200
        reply = http.send(again)
    assert reply.status_code == 202
    assert reply.json()["sha256"] == hashlib.sha256(b'{"template":"document"}').hexdigest()
    assert len(Echo.connections) == 2


def test_an_answer_without_a_length_is_refused(server: str) -> None:
    with Connection(server) as http, pytest.raises(ConnectionError, match="Content-Length"):
        http.send(prepare(server, "POST", "/unframed", json={}))


def test_only_plain_http_is_spoken() -> None:
    with pytest.raises(ValueError, match="plain http"):
        Connection("https://127.0.0.1:1")
