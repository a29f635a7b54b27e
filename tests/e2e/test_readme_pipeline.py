"""The README's pipeline example, run as written: its commands are read from the README (the
`sh` block with `--then`) and run by bash against a real gateway, resizer, renderer, mailer,
mail sink and audit, so README and reality cannot drift apart. Only what a reader's machine
would differ in is replaced: the gateway's address and `<id>`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from cli.pipeline import chain
from shared.config import Settings
from shared.keyfile import key_file, write_key_file
from tests.conftest import SpawnFn
from tests.support.audit import AuditService, start_audit
from tests.support.broker import TestBroker
from tests.support.gateway import RunningGateway, start_gateway
from tests.support.mailsink import MailSink, start_mailsink
from tests.support.pdfs import image_xobjects, open_pdf, text_of
from tests.support.processes import ROOT, service_env

README = ROOT / "README.md"
BIN = Path(sys.executable).parent  # where `jobsuite` is installed, as .venv/bin under make run
README_GATEWAY = "localhost:8080"


def readme_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.DOTALL)


def pipeline_commands() -> list[str]:
    """The README's pipeline example, one command each (a here-document is one command)."""
    (block,) = [b for b in readme_blocks() if "--then" in b]
    commands: list[str] = []
    lines = iter(block.splitlines())
    for line in lines:
        if "<<'EOF'" in line:
            body = [line]
            for more in lines:
                body.append(more)
                if more == "EOF":
                    break
            commands.append("\n".join(body))
        elif line.strip():
            commands.append(line)
    return commands


def auth_line() -> str:
    """The README's `AUTH=…` line, which its curl examples use."""
    (line,) = [line for b in readme_blocks() for line in b.splitlines() if line.startswith("AUTH=")]
    return line.split("  #")[0]


@pytest.fixture
def suite(
    spawn: SpawnFn, broker: TestBroker, settings: Settings, tmp_path: Path
) -> tuple[RunningGateway, AuditService, MailSink]:
    sink = start_mailsink(spawn, tmp_path / "mail")
    workers = [
        spawn("services.resizer"),
        spawn("services.renderer"),
        spawn("services.mailer", **sink.env()),
    ]
    audit = start_audit(spawn, settings, tmp_path / "audit")
    gateway = start_gateway(spawn, settings, audit_url=audit.url)
    for worker in workers:
        worker.wait_logged("consuming")
    # The key where `make run` saves it (HOME is the test's own): the README's AUTH line
    # reads default.key, the CLI the file of its namespace.
    for namespace in ("default", settings.namespace):
        write_key_file(key_file(namespace), gateway.key)
    return gateway, audit, sink


def run(
    command: str, settings: Settings, gateway: RunningGateway, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """One README command, run by bash in the reader's folder (`cwd`), with `.venv/bin` on
    the PATH, as the README says."""
    address = gateway.url.removeprefix("http://")
    env = service_env(settings, GATEWAY_URL=gateway.url, HOME=os.environ["HOME"])
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    # The console script imports the installed (editable) package; this tree's comes first.
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        ["bash", "-c", f"{auth_line()}\n{command.replace(README_GATEWAY, address)}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_the_readme_pipeline_commands_work_as_written(
    suite: tuple[RunningGateway, AuditService, MailSink], settings: Settings, tmp_path: Path
) -> None:
    gateway, audit, sink = suite
    here = tmp_path / "reader"
    here.mkdir()
    Image.radial_gradient("L").resize((1200, 900)).convert("RGB").save(here / "photo.jpg")
    write_then, submit, post, status = pipeline_commands()

    written = run(write_then, settings, gateway, here)
    assert written.returncode == 0, written.stderr
    then = json.loads((here / "then.json").read_text())

    # The CLI: the resize job's id, then each job's outcome, to the mail at the end.
    submitted = run(submit, settings, gateway, here)
    assert submitted.returncode == 0, submitted.stderr
    first, *outcomes = submitted.stdout.splitlines()
    steps = chain(first, "resize", then)
    assert [s.type for s in steps] == ["resize", "render", "mail"]
    assert len(outcomes) == 3
    for step, line in zip(steps, outcomes, strict=True):
        assert line.startswith(f"{step.id} {step.type} succeeded"), outcomes

    # curl: the same pipeline as a multipart form, `then` the file's text.
    posted = run(post, settings, gateway, here)
    assert posted.returncode == 0, posted.stderr
    curl_first = json.loads(posted.stdout)["id"]
    curl_steps = chain(curl_first, "resize", then)
    audit.wait_for_status(curl_steps[-1].id, "succeeded", timeout=90)

    for message in sink.wait_for_messages(2):
        detail = sink.message(message["id"])
        assert detail["subject"] == "Thumbnails"
        (attachment,) = detail["attachments"]
        pdf = open_pdf(sink.attachment(message["id"], attachment["name"]).content)
        assert text_of(pdf).startswith("Contact sheet")
        assert image_xobjects(pdf) == 2

    # `jobsuite status` of the middle job: the job before it and the one after.
    render_id = curl_steps[1].id
    shown = run(status.replace("<id>", render_id), settings, gateway, here)
    assert shown.returncode == 0, shown.stderr
    assert ["parent", curl_first] in [line.split() for line in shown.stdout.splitlines()]
    pipeline = shown.stdout.split("pipeline, first job first (* this one):\n")[1].splitlines()
    assert [line.split() for line in pipeline] == [
        ["1.", "resize", "succeeded", curl_first],
        ["*", "2.", "render", "succeeded", render_id],
        ["3.", "mail", "succeeded", curl_steps[2].id],
    ]


def test_wait_follows_a_pipeline_to_the_job_that_failed_and_says_the_rest_never_ran(
    suite: tuple[RunningGateway, AuditService, MailSink], settings: Settings, tmp_path: Path
) -> None:
    gateway, _audit, sink = suite
    here = tmp_path / "reader"
    here.mkdir()
    Image.new("RGB", (400, 300), "teal").save(here / "photo.jpg")
    # Input 5 of a job with two inputs: the gateway cannot know, the renderer refuses it.
    then = {
        "type": "render",
        "params": {"template": "document", "data": {"blocks": [{"image": 5}]}},
        "then": {
            "type": "mail",
            "params": {"to": ["ann@example.org"], "subject": "s", "text": "t"},
        },
    }
    (here / "then.json").write_text(json.dumps(then))
    submit = "jobsuite submit resize photo.jpg --size 80 --size 40 --then then.json --wait"

    submitted = run(submit, settings, gateway, here)

    assert submitted.returncode == 1, submitted.stdout + submitted.stderr
    first, resized = submitted.stdout.splitlines()
    resize, render, mail = chain(first, "resize", then)
    assert resized.startswith(f"{resize.id} resize succeeded")
    failed, not_run = submitted.stderr.splitlines()
    # failed, then dead once the audit has its dead letter: either is the render's end
    assert re.match(f"{render.id} render (failed|dead): invalid_data: data.blocks.0.image", failed)
    assert not_run == f"{mail.id} mail not run: the job before it did not succeed"
    assert sink.messages() == []

    shown = run(f"jobsuite status {first}", settings, gateway, here)
    assert shown.returncode == 0, shown.stderr
    pipeline = shown.stdout.split("pipeline, first job first (* this one):\n")[1].splitlines()
    rows = [line.split() for line in pipeline]
    assert rows[0] == ["*", "1.", "resize", "succeeded", resize.id]
    assert rows[1] in (["2.", "render", "failed", render.id], ["2.", "render", "dead", render.id])
    assert len(rows) == 2  # the mail never came
