"""The CLI's side of the gateway's HTTP API: calls, refusals as one line, downloads (waiting
for jobs: cli/pipeline.py)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from cli.common import err_console, settings
from shared.errors import JobsuiteError
from shared.keyfile import auth_header

TERMINAL = {"succeeded", "failed", "rejected", "dead"}
# A submission the gateway asks to retry (503 or 409 with Retry-After) is sent this many
# times in all, waiting what Retry-After says (at most MAX_RETRY_WAIT_S).
SUBMIT_ATTEMPTS = 4
MAX_RETRY_WAIT_S = 10.0


class GatewayError(JobsuiteError):
    """The gateway could not be reached or refused the request."""


class GatewayClient:
    def __init__(self, url: str | None, *, transport: httpx.BaseTransport | None = None) -> None:
        s = settings()
        self.url = (url or s.gateway_url).rstrip("/")
        self.http = httpx.Client(
            base_url=self.url, timeout=60, transport=transport, headers=auth_header(s)
        )

    @contextmanager
    def reaching(self) -> Iterator[None]:
        try:
            yield
        except httpx.ConnectError:
            raise GatewayError(
                f"cannot reach the gateway at {self.url}: is it running? (GATEWAY_URL, --gateway)"
            ) from None
        except httpx.HTTPError as e:
            raise GatewayError(f"gateway at {self.url}: {type(e).__name__}: {e}") from None

    def call(self, method: str, path: str, *ok: int, **kw: Any) -> httpx.Response:
        with self.reaching():
            response = self.http.request(method, path, **kw)
        if ok and response.status_code not in ok:
            raise GatewayError(describe(response))
        return response

    def submit(
        self,
        path: str,
        key: str | None,
        *,
        rewind: Callable[[], object] = lambda: None,
        sleep: Callable[[float], None] = time.sleep,
        **kw: Any,
    ) -> httpx.Response:
        """POST a job under an Idempotency-Key (a new one when none is given), and when the
        gateway says when to try again, try again under the same key: a job whose first try
        is in doubt (sent, never confirmed) is then sent again as itself, never as a second
        job. `rewind` puts an uploaded file back at its start before each try."""
        headers = {"Idempotency-Key": key or f"jobsuite-cli-{uuid.uuid4()}"}
        for attempt in range(1, SUBMIT_ATTEMPTS + 1):
            rewind()
            response = self.call("POST", path, headers=headers, **kw)
            if response.status_code == 202:
                return response
            wait_s = _retry_after(response)
            if wait_s is None or response.status_code not in (409, 503):
                break
            if attempt < SUBMIT_ATTEMPTS:
                err_console.print(
                    f"note: {describe(response)}; trying again under the same Idempotency-Key",
                    highlight=False,
                    soft_wrap=True,
                )
                sleep(wait_s)
        raise GatewayError(describe(response))

    def download(self, path: str, target: Path) -> None:
        with self.reaching(), self.http.stream("GET", path) as response:
            save(expect_ok(response), target)


def expect_ok(response: httpx.Response) -> httpx.Response:
    if response.status_code != 200:
        response.read()
        raise GatewayError(describe(response))
    return response


def save(response: httpx.Response, target: Path) -> None:
    """Stream a body to `target` (a `.part` file renamed when complete)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    with part.open("wb") as out:
        for chunk in response.iter_bytes():
            out.write(chunk)
    part.replace(target)


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds (only the delta form: the gateway sends no dates)."""
    try:
        return min(float(response.headers["retry-after"]), MAX_RETRY_WAIT_S)
    except (KeyError, ValueError):
        return None


def describe(response: httpx.Response) -> str:
    """One line for a refusal: `the gateway refused it (422): width: …`."""
    try:
        detail: Any = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        detail = response.text.strip() or response.reason_phrase
    if isinstance(detail, list):
        detail = "; ".join(_one_error(e) for e in detail)
    retry = response.headers.get("retry-after")
    hint = f" (retry after {retry} s)" if retry else ""
    if response.status_code == 401:
        hint = f"{hint} (set JOBSUITE_API_KEY, or `make run` once to save a local key)"
    return f"the gateway answered {response.status_code}: {detail}{hint}"


def _one_error(error: Any) -> str:
    """`width: …`, or the message alone when it is about the whole body (loc ["body"])."""
    if not isinstance(error, dict):
        return str(error)
    where = ".".join(str(p) for p in error.get("loc", [])[1:])
    message = str(error.get("msg", "invalid"))
    return f"{where}: {message}" if where else message
