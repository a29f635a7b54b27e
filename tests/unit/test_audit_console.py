"""The console's pages over a real read model (no broker here: dead letters and queues are
in tests/browser/test_console.py): jobs with filters, one job's timeline and pipeline,
workers, the key check, its own assets."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from services.audit.api import create_app
from services.audit.console.routes import Console
from services.audit.queries import Queries
from services.audit.recorder import Recorder
from shared.blobs import FolderBlobStore, output_key
from shared.config import Settings
from shared.live import Changes
from shared.messages import Event, utc_now
from shared.state import API_KEYS_FILE
from shared.state.keys import SqliteApiKeyStore
from tests.support.audit import make_event, new_job_id

BASE = "http://localhost"


@pytest.fixture
def recorder(tmp_path: Path) -> Recorder:
    return Recorder.open(Settings(audit_dir=tmp_path / "audit"))


@pytest.fixture
def keys(tmp_path: Path) -> Iterator[SqliteApiKeyStore]:
    store = SqliteApiKeyStore.open(tmp_path / "state" / API_KEYS_FILE)
    yield store
    store.close()


@pytest.fixture
def admin_key(keys: SqliteApiKeyStore) -> str:
    return keys.create("admin", admin=True)[1]


@pytest.fixture
def client(recorder: Recorder, keys: SqliteApiKeyStore, admin_key: str) -> TestClient:
    console = Console.of(Settings(), Changes())
    app = create_app(Queries(recorder.model.path), keys=keys, console=console)
    basic = base64.b64encode(f"admin:{admin_key}".encode()).decode()
    return TestClient(app, headers={"Authorization": f"Basic {basic}"}, base_url=BASE)


def record(recorder: Recorder, *events: Event) -> None:
    recorder.record([("events", e) for e in events])


def by(instance: str, event: Event) -> Event:
    """`event` as worker instance `instance` (`service:n`) published it."""
    return event.model_copy(update={"instance": instance, "service": instance.split(":")[0]})


def pipeline(recorder: Recorder) -> tuple[str, str, str]:
    """resize → render → mail, the mail failed; each by its own worker instance."""
    resize, render, mail = new_job_id(), new_job_id(), new_job_id()
    record(
        recorder,
        make_event("job.submitted", resize, client="alice"),
        by("resizer:7", make_event("job.started", resize, seconds=1)),
        by("resizer:7", make_event(
            "job.succeeded", resize, seconds=2, duration_ms=812.0, outputs=["300x200.jpg"]
        )),
        make_event("job.submitted", render, seconds=2, job_type="render", parent_id=resize,
                   client="alice"),
        make_event("job.succeeded", render, seconds=3, job_type="render", duration_ms=90.0),
        make_event("job.submitted", mail, seconds=3, job_type="mail", parent_id=render,
                   client="alice"),
        by("mailer:2", make_event(
            "job.failed", mail, seconds=4, job_type="mail", error=("smtp_5xx", "550 no")
        )),
    )  # fmt: skip
    return resize, render, mail


def test_the_jobs_page_lists_jobs_newest_first_with_their_status(
    client: TestClient, recorder: Recorder
) -> None:
    resize, render, mail = pipeline(recorder)
    page = client.get("/")
    assert page.status_code == 200
    ids = re.findall(r'<tr data-id="([^"]+)">', page.text)
    assert ids == [mail, render, resize]
    assert '<span class="status status-failed">failed</span>' in page.text
    assert "3 jobs: 1 failed, 2 succeeded" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "failed"}, ["mail"]),
        ({"type": "render"}, ["render"]),
        ({"client": "alice", "type": "resize"}, ["resize"]),
        ({"client": "bob"}, []),
    ],
)
def test_filters_narrow_the_jobs(
    client: TestClient, recorder: Recorder, query: dict[str, str], expected: list[str]
) -> None:
    jobs = dict(zip(("resize", "render", "mail"), pipeline(recorder), strict=True))
    ids = re.findall(r'<tr data-id="([^"]+)">', client.get("/", params=query).text)
    assert ids == [jobs[name] for name in expected]


def test_an_id_opens_its_job_and_a_prefix_lists_the_jobs_it_starts(
    client: TestClient, recorder: Recorder
) -> None:
    resize, _render, _mail = pipeline(recorder)
    exact = client.get("/", params={"id": resize}, follow_redirects=False)
    assert (exact.status_code, exact.headers["location"]) == (303, f"console/jobs/{resize}")
    prefix = client.get("/", params={"id": resize[:8]})
    assert resize in re.findall(r'<tr data-id="([^"]+)">', prefix.text)
    assert "No jobs match." in client.get("/", params={"id": "%_zz"}).text


def test_bad_filters_are_a_clear_error(client: TestClient) -> None:
    since = client.get("/", params={"since": "yesterday"})
    assert since.status_code == 422 and "is not a date and time" in since.text
    status = client.get("/", params={"status": "lost"})
    assert status.status_code == 422 and "no status &#x27;lost&#x27;" in status.text


def test_a_job_page_shows_its_timeline_pipeline_and_outputs(
    client: TestClient, recorder: Recorder
) -> None:
    resize, render, mail = pipeline(recorder)
    page = client.get(f"/console/jobs/{render}").text
    # The whole pipeline, from its first job, this one marked.
    tree = page[page.index('<ul class="tree">') :]
    assert tree.index(resize) < tree.index(render) < tree.index(mail)
    assert f'<strong aria-current="page">render <code>{render}</code>' in tree
    assert f'href="../../console/jobs/{mail}"' in tree
    first = client.get(f"/console/jobs/{resize}").text
    assert "<code>300x200.jpg</code>" in first and f"jobsuite result {resize}" in first
    timeline = first[first.index('<table class="timeline">') :]
    assert [e for e in ("job.submitted", "job.started", "job.succeeded") if e in timeline] == [
        "job.submitted", "job.started", "job.succeeded"
    ]  # fmt: skip
    assert "resizer:7" in timeline and "812 ms" in timeline
    failed = client.get(f"/console/jobs/{mail}").text
    assert "smtp_5xx: 550 no" in failed
    assert client.get(f"/console/jobs/{new_job_id()}").status_code == 404


def test_the_workers_page_counts_each_instance(client: TestClient, recorder: Recorder) -> None:
    pipeline(recorder)
    page = client.get("/console/workers").text
    rows = {m[0]: m for m in re.findall(r"<code>([^<]+)</code></td><td>([^<]*)</td>", page)}
    assert set(rows) == {"resizer:7", "test:1", "mailer:2"}
    resizer = page[page.index("resizer:7") :].split("</tr>")[0]
    assert re.findall(r'<td class="number">(\d+)</td>', resizer) == ["1", "0"]
    mailer = page[page.index("mailer:2") :].split("</tr>")[0]
    assert re.findall(r'<td class="number">(\d+)</td>', mailer) == ["0", "1"]


def test_the_console_needs_an_admin_key(recorder: Recorder, keys: SqliteApiKeyStore) -> None:
    _alice, user_key = keys.create("alice")
    console = Console.of(Settings(), Changes())
    app = create_app(Queries(recorder.model.path), keys=keys, console=console)
    anonymous = TestClient(app, base_url=BASE)
    refused = anonymous.get("/")
    assert refused.status_code == 401 and "Basic" in refused.headers["www-authenticate"]
    assert anonymous.get("/console/static/console.js").status_code == 401
    basic = base64.b64encode(f"alice:{user_key}".encode()).decode()
    user = anonymous.get("/console/workers", headers={"Authorization": f"Basic {basic}"})
    assert user.status_code == 403


def test_the_consoles_script_and_stylesheet_come_from_the_package(client: TestClient) -> None:
    page = client.get("/").text
    assert '<script src="console/static/console.js" defer></script>' in page
    assert "EventSource" in client.get("/console/static/console.js").text
    assert client.get("/console/static/console.css").status_code == 200
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert links and not [link for link in links if "//" in link]


def test_a_cross_site_page_cannot_replay_or_purge(client: TestClient) -> None:
    for action in ("replay", "purge"):
        response = client.post(
            f"/console/dead/{action}",
            data={"all": "true"},
            headers={"Origin": "https://evil.example"},
        )
        assert response.status_code == 403
        assert response.json()["error"] == "origin_not_allowed"


def test_outputs_are_previewed_and_served_from_the_blob_store(
    recorder: Recorder, keys: SqliteApiKeyStore, admin_key: str, tmp_path: Path
) -> None:
    blobs = FolderBlobStore(tmp_path / "blobs")
    job_id = new_job_id()
    picture = io.BytesIO()
    Image.new("RGB", (30, 20), (200, 30, 30)).save(picture, "JPEG")
    jpeg = blobs.write_bytes(output_key(job_id, "30x20.jpg"), picture.getvalue())
    data = blobs.write_bytes(output_key(job_id, "data.html"), b"<script>alert(1)</script>")
    blobs.write_manifest(job_id, [jpeg, data], client="alice")
    record(
        recorder,
        make_event("job.submitted", job_id, client="alice"),
        make_event("job.succeeded", job_id, seconds=1, outputs=[jpeg, data]),
    )
    app = create_app(
        Queries(recorder.model.path), keys=keys, console=Console.of(Settings(), Changes(), blobs)
    )
    basic = base64.b64encode(f"admin:{admin_key}".encode()).decode()
    client = TestClient(app, headers={"Authorization": f"Basic {basic}"}, base_url=BASE)

    page = client.get(f"/console/jobs/{job_id}").text
    href = f"../../console/jobs/{job_id}/outputs/30x20.jpg"
    assert f'<img src="{href}" alt="30x20.jpg"' in page
    assert "image/jpeg, " in page and 'outputs/data.html" download' in page
    assert '<img src="../../console/jobs/' + job_id + '/outputs/data.html"' not in page

    image = client.get(f"/console/jobs/{job_id}/outputs/30x20.jpg")
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert image.headers["content-disposition"].startswith("inline")
    assert Image.open(io.BytesIO(image.content)).size == (30, 20)
    html = client.get(f"/console/jobs/{job_id}/outputs/data.html")
    assert html.headers["content-type"] == "application/octet-stream"
    assert html.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in html.headers["content-security-policy"]
    assert client.get(f"/console/jobs/{job_id}/outputs/other.jpg").status_code == 404

    blobs.delete_prefix(f"outputs/{job_id}")  # deleted, or past retention
    gone = client.get(f"/console/jobs/{job_id}").text
    assert "Not in the blob store the console reads" in gone
    assert client.get(f"/console/jobs/{job_id}/outputs/30x20.jpg").status_code == 404


def test_rates_count_each_types_jobs_in_and_out_since_a_moment(recorder: Recorder) -> None:
    before = utc_now() - timedelta(seconds=1)
    pipeline(recorder)
    rates = Queries(recorder.model.path).rates(before)
    assert rates == {
        "resize": {"submitted": 1, "finished": 1},
        "render": {"submitted": 1, "finished": 1},
        "mail": {"submitted": 1, "finished": 1},
    }
    assert Queries(recorder.model.path).rates(utc_now() + timedelta(seconds=1)) == {}


def test_a_since_out_of_range_and_a_prefix_in_another_case(
    client: TestClient, recorder: Recorder
) -> None:
    resize, _render, _mail = pipeline(recorder)
    far = client.get("/", params={"since": "0001-01-01T00:00:00+01:00"})
    assert far.status_code == 422 and "is not a date and time" in far.text
    # The shortest prefix of 8 or more that holds a letter: an all-digit one (1 in 44 random
    # ids) reads the same in upper case, and would match.
    prefix = next(resize[:n] for n in range(8, len(resize) + 1) if resize[:n].upper() != resize[:n])
    upper = client.get("/", params={"id": prefix.upper()})
    assert "No jobs match." in upper.text  # ids are compared exactly, case and all
