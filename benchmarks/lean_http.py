"""A lean HTTP/1.1 client for the end-to-end load: each request is built once by httpx (the
same bytes httpx would send, multipart included) and then sent again and again on one
keep-alive connection per client thread, and only the status line, Content-Length and body
of each answer are read.

Why: the load client shares the 2 cores with the services it measures. Building and parsing
every upload with httpx cost it about 1 ms of CPU per job, a seventh of what the whole tiny
end-to-end job cost the machine, which held back the scaling the runs could show.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

_HEAD_END = b"\r\n\r\n"
_MAX_HEAD = 64 * 1024


@dataclass(frozen=True)
class Prepared:
    """A request's bytes, ready to send on a connection to its host."""

    data: bytes


@dataclass(frozen=True)
class Reply:
    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


def prepare(
    base_url: str,
    method: str,
    path: str,
    headers: Mapping[str, str] | None = None,
    **body: Any,
) -> Prepared:
    """The bytes of the request httpx builds for `method base_url+path` with `body`
    (`files=`, `data=`, `json=`), sent as they are each time."""
    request = httpx.Request(method, base_url + path, headers=dict(headers or {}), **body)
    content = request.read()
    lines = [f"{method} {request.url.raw_path.decode()} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in request.headers.items()]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return Prepared(head + content)


class Connection:
    """One keep-alive connection; opened again when the server closed it."""

    def __init__(self, base_url: str, timeout: float = 60) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"plain http://host:port only: {base_url!r}")
        self._address = (parts.hostname, parts.port or 80)
        self._timeout = timeout
        self._sock: socket.socket | None = None
        self._pending = b""

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._pending = b""

    def send(self, request: Prepared) -> Reply:
        if self._sock is None:
            self._sock = socket.create_connection(self._address, timeout=self._timeout)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.sendall(request.data)
        status, length, closes = self._read_head()
        content = self._read_exactly(length)
        if closes:
            self.close()
        return Reply(status, content)

    def _read_head(self) -> tuple[int, int, bool]:
        while (end := self._pending.find(_HEAD_END)) < 0:
            if len(self._pending) > _MAX_HEAD:
                raise ConnectionError("an answer's head too long")
            self._receive()
        head, self._pending = self._pending[:end], self._pending[end + len(_HEAD_END) :]
        status_line, *fields = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        found = {}
        for field in fields:
            name, _, value = field.partition(":")
            found[name.strip().lower()] = value.strip()
        if "content-length" not in found:  # chunked answers: none of the gateway's
            raise ConnectionError(f"an answer without Content-Length: {status_line}")
        closes = found.get("connection", "").lower() == "close"
        return status, int(found["content-length"]), closes

    def _read_exactly(self, length: int) -> bytes:
        while len(self._pending) < length:
            self._receive()
        content, self._pending = self._pending[:length], self._pending[length:]
        return content

    def _receive(self) -> None:
        assert self._sock is not None
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-answer")
        self._pending += chunk
