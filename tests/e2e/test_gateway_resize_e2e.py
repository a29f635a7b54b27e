"""The README's promise, end to end: gateway and resizer as processes; a photo submitted with
the `jobsuite` console script (`--wait`), its result fetched with `jobsuite result`; and the
same with a plain multipart POST, as `curl -F file=@photo.jpg -F width=800` does."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import httpx
from PIL import Image

from shared.config import Settings
from tests.conftest import SpawnFn
from tests.support.broker import TestBroker
from tests.support.gateway import RunningGateway, start_gateway
from tests.support.processes import ROOT, service_env

JOBSUITE = str(Path(sys.executable).with_name("jobsuite"))


def make_photo(path: Path, size: tuple[int, int]) -> Path:
    Image.linear_gradient("L").resize(size).convert("RGB").save(path, "JPEG", quality=90)
    return path


def jobsuite(
    settings: Settings, gateway: RunningGateway, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [JOBSUITE, *args],
        cwd=ROOT,
        env=service_env(settings, GATEWAY_URL=gateway.url, JOBSUITE_API_KEY=gateway.key),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_submit_with_the_cli_wait_and_fetch_the_resized_photo(
    broker: TestBroker, spawn: SpawnFn, settings: Settings, tmp_path: Path
) -> None:
    resizer = spawn("services.resizer")
    gateway = start_gateway(spawn, settings)
    resizer.wait_logged("consuming")
    photo = make_photo(tmp_path / "photo.jpg", (1600, 1200))

    submitted = jobsuite(
        settings, gateway, "submit", "resize", str(photo), "--width", "800", "--wait"
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id, outcome = submitted.stdout.splitlines()
    assert outcome.startswith(f"{job_id} succeeded")

    fetched = jobsuite(settings, gateway, "result", job_id, "-o", str(tmp_path / "out") + "/")
    assert fetched.returncode == 0, fetched.stderr
    (saved,) = (tmp_path / "out").iterdir()
    assert fetched.stdout.strip() == str(saved)
    with Image.open(saved) as out:
        assert (out.format, out.size) == ("JPEG", (800, 600))


def test_a_plain_multipart_post_like_curl(
    broker: TestBroker, spawn: SpawnFn, settings: Settings, tmp_path: Path
) -> None:
    resizer = spawn("services.resizer")
    gateway = start_gateway(spawn, settings)
    resizer.wait_logged("consuming")
    photo = make_photo(tmp_path / "photo.jpg", (1200, 900))

    with gateway.client() as http:
        with photo.open("rb") as f:
            accepted = http.post("/jobs/resize", files={"file": f}, data={"width": "800"})
        assert accepted.status_code == 202, accepted.text
        status_url = accepted.headers["location"]
        record = _wait_until_finished(http, status_url)
        assert record["status"] == "succeeded"
        result = http.get(f"{status_url}/result")
    assert result.status_code == 200
    assert result.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(result.content)) as out:
        assert out.size == (800, 600)


def _wait_until_finished(http: httpx.Client, status_url: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = http.get(status_url)
        # 503 while unfinished: no audit service runs in this test, only the manifest tells.
        if response.status_code == 200 and response.json()["status"] in ("succeeded", "failed"):
            return response.json()
        time.sleep(0.2)
    raise AssertionError(f"{status_url} did not finish within {timeout}s")
