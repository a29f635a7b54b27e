"""`jobsuite submit|status|result` through the real gateway process (Typer's runner, with
the test namespace's environment): what reaches the queue, what is printed, exit codes."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from cli.app import app
from shared.blobs import FolderBlobStore, output_key
from shared.config import Settings
from tests.support.broker import TestBroker
from tests.support.fake_http import JsonServer
from tests.support.gateway import RunningGateway, closed_url
from tests.support.processes import service_env


@pytest.fixture
def audit(fake_audit: JsonServer) -> JsonServer:
    return fake_audit


@pytest.fixture
def gateway(gateway_with_fake_audit: RunningGateway) -> RunningGateway:
    return gateway_with_fake_audit


@pytest.fixture
def cli(settings: Settings, gateway: RunningGateway) -> CliRunner:
    return CliRunner(
        env=service_env(settings, GATEWAY_URL=gateway.url, JOBSUITE_API_KEY=gateway.key)
    )


def photo(path: Path, size: tuple[int, int] = (40, 30)) -> Path:
    Image.new("RGB", size, "purple").save(path, "JPEG")
    return path


def test_submit_resize_sends_one_job_per_file_and_prints_their_ids(
    cli: CliRunner, broker: TestBroker, tmp_path: Path
) -> None:
    files = [str(photo(tmp_path / f"p{i}.jpg")) for i in range(3)]
    result = cli.invoke(
        app, ["submit", "resize", *files, "--width", "20", "--fit", "cover", "--height", "20"]
    )
    assert result.exit_code == 0, result.output
    ids = [line.split()[0] for line in result.stdout.splitlines()]
    queued = [json.loads(body) for _, body in broker.drain(broker.names.task_queue("resize"))]
    assert sorted(job["id"] for job in queued) == sorted(ids)
    assert {(j["params"]["width"], j["params"]["height"], j["params"]["fit"]) for j in queued} == {
        (20, 20, "cover")
    }


def test_submit_render_and_mail_send_their_bodies(
    cli: CliRunner, broker: TestBroker, tmp_path: Path
) -> None:
    data = tmp_path / "data.json"
    # Valid document data: the gateway checks every template's data since the groundwork.
    data.write_text(json.dumps({"title": "Q3", "blocks": ["All good."]}))
    html = tmp_path / "body.html"
    html.write_text("<p>see attached</p>")
    render = cli.invoke(
        app, ["submit", "render", "--template", "document", "--data", str(data), "--title", "Q3"]
    )
    assert render.exit_code == 0, render.output
    render_id = render.stdout.strip()
    mail = cli.invoke(
        app,
        ["submit", "mail", "--to", "ann@example.org", "--to", "Bob <bob@example.org>",
         "--subject", "Report", "--text", "hi", "--html-file", str(html), "--attach", render_id],
    )  # fmt: skip
    assert mail.exit_code == 0, mail.output
    ((_, render_body),) = broker.drain(broker.names.task_queue("render"))
    ((_, mail_body),) = broker.drain(broker.names.task_queue("mail"))
    assert json.loads(render_body)["params"]["title"] == "Q3"
    params = json.loads(mail_body)["params"]
    assert params["to"] == ["ann@example.org", "Bob <bob@example.org>"]
    assert (params["html"], params["attachments"]) == ("<p>see attached</p>", [render_id])


def test_a_refusal_is_one_readable_line_and_a_failure_exit_code(
    cli: CliRunner, tmp_path: Path
) -> None:
    result = cli.invoke(
        app, ["submit", "mail", "--to", "a@b.c, d@e.f", "--subject", "x", "--text", "y"]
    )
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert "the gateway answered 422: to.0: must be one e-mail address" in result.stderr
    assert "Traceback" not in result.output
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("hello")
    result = cli.invoke(app, ["submit", "resize", str(not_an_image), "--width", "5"])
    assert result.exit_code == 1
    assert "415: file: not an allowed image" in result.stderr


def test_an_unreachable_gateway_is_said_plainly(
    settings: Settings, gateway: RunningGateway
) -> None:
    cli = CliRunner(env=service_env(settings, GATEWAY_URL=closed_url()))
    result = cli.invoke(app, ["status", str(uuid.uuid4())])
    assert result.exit_code == 1
    assert "cannot reach the gateway at http://127.0.0.1:" in result.stderr
    flag = CliRunner(env=service_env(settings)).invoke(
        app, ["status", str(uuid.uuid4()), "--gateway", closed_url()]
    )
    assert "cannot reach the gateway" in flag.stderr


def test_wait_reports_the_outcome_and_fails_with_the_job(
    cli: CliRunner, audit: JsonServer, tmp_path: Path
) -> None:
    # The stand-in audit says each job has failed as soon as it is asked.
    original = audit.routes

    class FailEverything(dict):  # type: ignore[type-arg]
        def get(self, path: str, default: object = None) -> object:
            job_id = path.rsplit("/", 1)[-1]
            error = {"kind": "template", "message": "no such template field"}
            return (200, {"id": job_id, "type": "render", "status": "failed", "error": error})

    audit.routes = FailEverything(original)
    data = tmp_path / "report.json"  # valid report data: the gateway checks it
    data.write_text(json.dumps({"sections": [{"heading": "Summary"}]}))
    submit = ["submit", "render", "--template", "report", "--data", str(data), "--wait"]
    result = cli.invoke(app, submit)
    assert result.exit_code == 1, result.output
    assert "failed: template: no such template field" in result.stderr


def test_status_and_result_of_a_finished_job(
    cli: CliRunner, audit: JsonServer, settings: Settings, tmp_path: Path
) -> None:
    job_id = str(uuid.uuid4())
    blobs = FolderBlobStore(settings.blob_dir)
    keys = [
        blobs.write_bytes(output_key(job_id, name), name.encode()) for name in ("a.png", "b.png")
    ]
    blobs.write_manifest(job_id, keys)
    audit.routes[f"/jobs/{job_id}"] = (
        200,
        {"id": job_id, "type": "resize", "status": "succeeded", "attempts": 1, "outputs": keys},
    )
    status = cli.invoke(app, ["status", job_id])
    assert status.exit_code == 0, status.output
    assert "succeeded" in status.stdout and keys[0] in status.stdout

    out = tmp_path / "out"
    result = cli.invoke(app, ["result", job_id, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    assert (out / "b.png").read_bytes() == b"b.png"

    single = str(uuid.uuid4())
    blobs.write_manifest(single, [blobs.write_bytes(output_key(single, "x.png"), _png())])
    target = tmp_path / "named.png"
    assert cli.invoke(app, ["result", single, "-o", str(target)]).exit_code == 0
    assert target.read_bytes() == _png()
    missing = cli.invoke(app, ["result", str(uuid.uuid4()), "-o", str(out)])
    assert (missing.exit_code, "404" in missing.stderr) == (1, True)


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buf, "PNG")
    return buf.getvalue()
