"""Hostile image files (corpus/images/): bombs, other formats under image names, truncated and
empty files. Through the gateway's upload, and straight onto the resize and render queues.

Every file must end in a clear refusal (an HTTP status naming the problem, or a job.failed
event saying what is wrong with the input), never in a Ghostscript run (see the `gs` trap
in conftest), and the service must take the next good job.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.security.conftest import CORPUS, Suite, _fake_gs, corpus_files, small_png, trapped_path
from tests.support.broker import EventWatcher

TOO_BIG = r"too large|over the limit"
NOT_AN_IMAGE = "not a supported image"
CORRUPT = "truncated or corrupt"


@dataclass(frozen=True)
class ImageCase:
    gateway: int  # the upload's HTTP status
    refusal: str  # a regex the gateway's refusal must match ("" when it takes the upload)
    failure: str | None  # a regex the worker's job.failed must match; None: it succeeds


CASES: dict[str, ImageCase] = {
    "at-limit-1000x1000.png": ImageCase(202, "", None),
    "over-limit-1001x1000.png": ImageCase(422, "too many pixels", TOO_BIG),
    "bomb-png-65535x65535.png": ImageCase(422, "too many pixels", TOO_BIG),
    "bomb-gif-65535x65535.gif": ImageCase(422, "too many pixels", TOO_BIG),
    "bomb-gif-frame-beyond-screen.gif": ImageCase(422, "too many pixels", TOO_BIG),
    "bomb-png-ztxt-16mb.png": ImageCase(415, "not a readable PNG", f"{CORRUPT}: Decompressed"),
    "eps-renamed.png": ImageCase(415, "not an allowed image", NOT_AN_IMAGE),
    "eps-dos-header-renamed.jpg": ImageCase(415, "not an allowed image", NOT_AN_IMAGE),
    "postscript-renamed.jpg": ImageCase(415, "not an allowed image", NOT_AN_IMAGE),
    "pdf-renamed.png": ImageCase(415, "not an allowed image", NOT_AN_IMAGE),
    "tiff-renamed.jpg": ImageCase(415, "not an allowed image", NOT_AN_IMAGE),
    "fits-renamed.png": ImageCase(415, "not an allowed image", NOT_AN_IMAGE),
    "svg-renamed.png": ImageCase(415, "not an allowed image", NOT_AN_IMAGE),
    "png-signature-then-eps.png": ImageCase(415, "not a readable PNG", NOT_AN_IMAGE),
    # The gateway reads the header only: a cut-off body is the worker's to find.
    "truncated.png": ImageCase(202, "", CORRUPT),
    "truncated.jpg": ImageCase(202, "", CORRUPT),
    "truncated.gif": ImageCase(202, "", CORRUPT),
    # Pillow cannot even identify it without the pixel chunk; either answer is clear.
    "header-only.png": ImageCase(415, "not a readable PNG", f"{CORRUPT}|{NOT_AN_IMAGE}"),
    "zero-byte.png": ImageCase(422, "the upload is empty", f"empty|{NOT_AN_IMAGE}"),
}
FILES = corpus_files("images")


def test_every_image_in_the_corpus_has_an_expectation() -> None:
    assert sorted(p.name for p in FILES) == sorted(CASES)


def test_the_corpus_stays_small() -> None:
    total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    assert total < 200_000


def _inputs_stored(suite: Suite) -> int:
    folder = suite.settings.blob_dir / "inputs"
    return len(list(folder.iterdir())) if folder.exists() else 0


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_upload_through_the_gateway(suite: Suite, events: EventWatcher, path: Path) -> None:
    case = CASES[path.name]
    stored = _inputs_stored(suite)
    response = suite.http.post(
        "/jobs/resize", files={"file": (path.name, path.read_bytes())}, data={"width": "16"}
    )
    assert response.status_code == case.gateway, response.text
    if case.gateway == 202:
        event = suite.outcome(events, response.json()["id"])
        if case.failure is None:
            assert event["event"] == "job.succeeded", event
        else:
            assert event["event"] == "job.failed", event
            assert re.search(case.failure, event["error"]["message"]), event
    else:
        assert re.search(case.refusal, str(response.json()["detail"])), response.text
        assert _inputs_stored(suite) == stored  # a refused upload leaves nothing behind
    good = suite.http.post(
        "/jobs/resize", files={"file": ("ok.png", small_png())}, data={"width": "8"}
    )
    assert good.status_code == 202, good.text
    suite.succeeded(events, good.json()["id"])
    suite.check_after_case()


@pytest.mark.parametrize("job_type", ["resize", "render"])
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_straight_onto_the_queue(
    suite: Suite, events: EventWatcher, path: Path, job_type: str
) -> None:
    case = CASES[path.name]
    params = (
        {"width": 16}
        if job_type == "resize"
        else {"template": "document", "data": {"blocks": [{"image": 0}]}}
    )
    job = suite.job_with_input(job_type, params, path.read_bytes(), path.name)
    event = suite.publish_with_good_job(events, job)
    if case.failure is None:
        assert event["event"] == "job.succeeded", event
    else:
        assert event["event"] == "job.failed", event
        assert re.search(case.failure, event["error"]["message"]), event["error"]
        assert suite.blobs.list(f"outputs/{job.id}") == []
    suite.check_after_case()


def test_the_gs_trap_catches_pillow_opening_eps_unguarded(tmp_path: Path) -> None:
    """The negative control: without a format allow-list, Pillow hands EPS to `gs`, and the
    trap the services run with records it. So the trap staying silent means something."""
    log = _fake_gs(tmp_path / "trap")
    script = (
        "import sys\nfrom PIL import Image\n"
        "im = Image.open(sys.argv[1])\n"
        "try:\n    im.load()\nexcept Exception:\n    pass\n"
    )
    eps = CORPUS / "images" / "eps-renamed.png"
    env = {"PATH": trapped_path(log.parent)}
    subprocess.run([sys.executable, "-c", script, str(eps)], env=env, check=True, timeout=30)
    assert log.exists()
