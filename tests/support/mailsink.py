"""The mail sink as a real process on free ports, and a small client for its HTTP API.

    sink = start_mailsink(spawn, tmp_path / "mail")          # waits until it serves
    sink.smtp_port, sink.http_port, sink.url, sink.maildir
    sink = start_mailsink(spawn, tmp_path / "mail", chaos_api=True)
    sink.set_chaos(451, times=2, on="data"); sink.clear_chaos()   # only with chaos_api
    sink = start_mailsink(spawn, tmp_path / "mail", ui_auth=("user", "secret"))
    sink.get(path) sends those credentials; sink.get(path, auth=None) sends none
    sink.wait_for_messages(1)  -> list of summaries (GET /messages), newest first
    sink.message(id), sink.raw(id), sink.attachment(id, name) -> httpx.Response
    sink.maildir_files()        -> the message files on disk
    sink.env()                  -> SMTP_HOST/SMTP_PORT for a mailer pointed at it
    sink.process                -> the ServiceProcess (logs, signals)

`spawn` is the `spawn` fixture of tests/conftest.py: the process is stopped after the test.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.ports import free_port
from tests.support.processes import ServiceProcess

SpawnFn = Callable[..., ServiceProcess]
MODULE = "services.mailsink"


@dataclass
class MailSink:
    process: ServiceProcess
    smtp_port: int
    http_port: int
    maildir: Path
    auth: tuple[str, str] | None = None  # MAILSINK_UI_AUTH, sent with every request

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def env(self) -> dict[str, str]:
        return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.smtp_port)}

    def get(self, path: str, auth: tuple[str, str] | bool | None = True) -> httpx.Response:
        """GET `path` with the sink's credentials (`auth=True`), others, or none (None)."""
        return httpx.get(self.url + path, auth=self._auth(auth), timeout=10)

    def _auth(self, auth: tuple[str, str] | bool | None) -> tuple[str, str] | None:
        if auth is True:
            return self.auth
        return auth or None

    def messages(self) -> list[dict[str, Any]]:
        response = self.get("/messages")
        response.raise_for_status()
        return list(response.json())

    def message(self, key: str) -> dict[str, Any]:
        response = self.get(f"/messages/{key}")
        response.raise_for_status()
        return dict(response.json())

    def raw(self, key: str) -> bytes:
        response = self.get(f"/messages/{key}/raw")
        response.raise_for_status()
        return response.content

    def attachment(self, key: str, name: str) -> httpx.Response:
        return self.get(f"/messages/{key}/attachments/{name}")

    def set_chaos(self, code: int, times: int | None = None, on: str = "data") -> None:
        body: dict[str, Any] = {"code": code, "on": on}
        if times is not None:
            body["times"] = times
        auth = self._auth(True)
        httpx.post(self.url + "/chaos", json=body, auth=auth, timeout=10).raise_for_status()

    def clear_chaos(self) -> None:
        httpx.delete(self.url + "/chaos", auth=self._auth(True), timeout=10).raise_for_status()

    def wait_for_messages(self, count: int, timeout: float = 15) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.messages()
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"the sink holds {len(self.messages())} messages, not {count}")

    def maildir_files(self) -> list[Path]:
        return sorted(p for sub in ("new", "cur") for p in (self.maildir / sub).glob("*"))


def start_mailsink(
    spawn: SpawnFn,
    maildir: Path,
    attempts: int = 3,
    *,
    chaos_api: bool = False,
    ui_auth: tuple[str, str] | None = None,
    **env: str,
) -> MailSink:
    """Start the sink on free ports and wait for /healthz; retry if a port was taken meanwhile.
    `chaos_api` serves /chaos (MAILSINK_CHAOS_API); `ui_auth` asks for HTTP Basic."""
    # Tests count every mail they sent (the soak sends 600): no cap unless a test sets one.
    env.setdefault("MAILSINK_MAX_MESSAGES", "0")
    if chaos_api:
        env["MAILSINK_CHAOS_API"] = "true"
    if ui_auth is not None:
        env["MAILSINK_UI_AUTH"] = ":".join(ui_auth)
    last = ""
    for _ in range(attempts):
        smtp_port, http_port = free_port(), free_port()
        process = spawn(
            MODULE,
            MAILSINK_DIR=str(maildir),
            MAILSINK_SMTP_PORT=str(smtp_port),
            MAILSINK_HTTP_PORT=str(http_port),
            MAILSINK_HOST="127.0.0.1",
            **env,
        )
        sink = MailSink(process, smtp_port, http_port, maildir, ui_auth)
        if _serving(sink):
            return sink
        last = process.tail()
        process.stop()
    raise AssertionError(f"the mail sink did not start:\n{last}")


def _serving(sink: MailSink, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sink.process.proc.poll() is not None:
            return False  # exited: most likely a port taken between free_port() and bind
        try:
            if sink.get("/healthz").status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    return False
