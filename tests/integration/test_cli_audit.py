"""`jobsuite events tail`, `audit verify|rebuild`, `jobs` and `dlq` against the real broker
and a real audit service."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pika
import pytest
from typer.testing import CliRunner, Result

from cli.app import app
from shared.config import Settings
from shared.messages import Job
from tests.conftest import SpawnFn
from tests.support.audit import AuditService, audit_env, start_audit
from tests.support.broker import TestBroker
from tests.support.flagged_worker import MODULE as FLAGGED_WORKER
from tests.support.flagged_worker import flag_path, flagged_job
from tests.support.keys import admin_key
from tests.support.ports import free_port
from tests.support.processes import ROOT, ServiceProcess, service_env

JOBSUITE = [sys.executable, "-c", "from cli.app import main; main()"]


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env, input=stdin)


@pytest.fixture
def audit_dir(tmp_path: Path) -> Path:
    return tmp_path / "audit"


@pytest.fixture
def audit(spawn: SpawnFn, settings: Settings, audit_dir: Path) -> AuditService:
    return start_audit(spawn, settings, audit_dir)


@pytest.fixture
def env(settings: Settings, audit: AuditService, audit_dir: Path) -> dict[str, str]:
    # A wide terminal, so rich's tables do not wrap what the tests look for.
    return service_env(
        settings,
        COLUMNS="250",
        JOBSUITE_API_KEY=audit.key,
        **audit_env(settings, audit_dir, audit.port),
    )


def start_worker(spawn: SpawnFn) -> ServiceProcess:
    worker = spawn(FLAGGED_WORKER)
    worker.wait_logged("consuming")
    return worker


class Tail:
    """`jobsuite events tail` as a real process, for a person or a script."""

    def __init__(self, env: dict[str, str], tmp_path: Path, *args: str) -> None:
        self.out = tmp_path / f"tail-{time.monotonic_ns()}.out"
        self.err = self.out.with_suffix(".err")
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [*JOBSUITE, "events", "tail", *args], cwd=ROOT, env=env, stdout=out, stderr=err
            )
        deadline = time.monotonic() + 20
        while "listening on" not in self.err.read_text():
            assert self.proc.poll() is None, self.err.read_text()
            assert time.monotonic() < deadline, "events tail did not start"
            time.sleep(0.05)
        self.queue = self.err.read_text().split("listening on ", 1)[1].split()[0]

    def text(self) -> str:
        return self.out.read_text()

    def wait_for_text(self, needle: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            assert time.monotonic() < deadline, f"{needle!r} not in:\n{self.text()}"
            time.sleep(0.05)

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(15)


def queue_exists(settings: Settings, queue: str) -> bool:
    """Asked from another connection: 405 (locked) means the exclusive queue is there."""
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        connection.channel().queue_declare(queue, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker as e:
        assert e.reply_code in (404, 405), e
        return e.reply_code == 405
    finally:
        if connection.is_open:
            connection.close()


def test_events_tail_shows_a_jobs_life_live_and_leaves_no_queue_behind(
    spawn: SpawnFn, broker: TestBroker, settings: Settings, env: dict[str, str], tmp_path: Path
) -> None:
    start_worker(spawn)
    script = Tail(env, tmp_path, "--json")
    other = Job(type="resize")
    watched = Job(type="resize", params={"fail_until": 2})
    person = Tail(env, tmp_path, "--job", watched.id)
    assert queue_exists(settings, script.queue)
    broker.publish_job(other)
    broker.publish_job(watched)

    person.wait_for_text("job.succeeded")
    script.wait_for_text(f'"event":"job.succeeded","job_id":"{watched.id}"')
    lines = [json.loads(line) for line in script.text().splitlines()]
    assert {e["job_id"] for e in lines} == {other.id, watched.id}
    life = [(e["event"], e["attempt"]) for e in lines if e["job_id"] == watched.id]
    assert life == [
        ("job.started", 1),
        ("job.retrying", 1),
        ("job.started", 2),
        ("job.succeeded", 2),
    ]
    seen = person.text().splitlines()
    assert [line.split()[1] for line in seen] == [
        "job.started",
        "job.retrying",
        "job.started",
        "job.succeeded",
    ]
    assert all(watched.id in line for line in seen)
    assert "transient: scripted transient failure" in seen[1]
    assert f"outputs/{watched.id}/result.txt" in seen[3]

    for tail in (script, person):
        assert tail.interrupt() == 0
        assert "Traceback" not in tail.err.read_text()
        assert not queue_exists(settings, tail.queue)


def test_audit_verify_passes_on_a_real_log_and_names_the_tampered_record(
    spawn: SpawnFn, broker: TestBroker, audit: AuditService, env: dict[str, str]
) -> None:
    start_worker(spawn)
    jobs = [Job(type="resize") for _ in range(3)]
    for j in jobs:
        broker.publish_job(j)
    for j in jobs:
        audit.wait_for_status(j.id, "succeeded")

    ok = cli(env, "audit", "verify")
    assert ok.exit_code == 0, ok.output
    assert "audit log intact: 6 records in 1 segment" in ok.output

    audit.process.signal(signal.SIGTERM)
    assert audit.process.wait(15) == 0
    (segment,) = (audit.audit_dir / "log").iterdir()
    lines = segment.read_bytes().splitlines(keepends=True)
    lines[4] = lines[4].replace(b'"attempt":1', b'"attempt":2')
    segment.write_bytes(b"".join(lines))

    broken = cli(env, "audit", "verify", str(audit.audit_dir))
    assert broken.exit_code == 1
    assert f"BROKEN at {segment.name} line 5 (expected seq 5)" in broken.output
    assert "hash does not match" in broken.output


def test_audit_verify_from_another_folder_finds_the_log_the_service_writes(
    spawn: SpawnFn, broker: TestBroker, settings: Settings, tmp_path: Path
) -> None:
    """The service started in the checkout and the command typed elsewhere, both with the
    folders relative (as the defaults are): both take them under JOBSUITE_HOME."""
    home, elsewhere = tmp_path / "suite", tmp_path / "elsewhere"
    elsewhere.mkdir()
    relative = {"JOBSUITE_HOME": str(home), "AUDIT_DIR": "var/audit", "STATE_DIR": "var/state"}
    key = admin_key(home / "var/state")
    port = free_port()
    process = spawn("services.audit", **{**audit_env(settings, home, port), **relative})
    process.wait_logged("consuming")
    audit = AuditService(process, port, home / "var/audit", key)
    start_worker(spawn)
    jobs = [Job(type="resize"), flagged_job(settings)]
    for j in jobs:
        broker.publish_job(j)
    audit.wait_for_status(jobs[0].id, "succeeded")
    audit.wait_for_status(jobs[1].id, "dead")
    assert (home / "var/audit/log").is_dir()  # not under the service's working folder

    env = {k: v for k, v in service_env(settings).items() if k not in ("AUDIT_DIR", "STATE_DIR")}
    env.update(JOBSUITE_HOME=str(home), PYTHONPATH=str(ROOT), COLUMNS="250")

    def verify_in(folder: Path, **extra: str) -> subprocess.CompletedProcess[str]:
        command = [*JOBSUITE, "audit", "verify"]
        return subprocess.run(
            command, cwd=folder, env={**env, **extra}, capture_output=True, text=True, timeout=60
        )

    found = verify_in(elsewhere)
    assert found.returncode == 0, found.stderr
    assert "audit log intact: 5 records in 1 segment" in found.stdout
    assert "warning" not in found.stderr  # the checkpoints were found too, beside the log
    # The same command where no suite lives says where it looked, and why there.
    lost = verify_in(elsewhere, JOBSUITE_HOME=str(elsewhere))
    assert lost.returncode == 2
    assert f"no audit log at {elsewhere / 'var/audit'} (AUDIT_DIR;" in " ".join(lost.stderr.split())


def test_audit_rebuild_is_refused_while_the_service_runs_and_restores_the_read_model(
    spawn: SpawnFn,
    broker: TestBroker,
    settings: Settings,
    audit: AuditService,
    audit_dir: Path,
    env: dict[str, str],
) -> None:
    start_worker(spawn)
    j = Job(type="resize")
    broker.publish_job(j)
    before = audit.wait_for_status(j.id, "succeeded")

    busy = cli(env, "audit", "rebuild")
    assert busy.exit_code == 1 and "in use by another audit process" in busy.output
    audit.process.signal(signal.SIGTERM)
    audit.process.wait(15)
    (audit_dir / "readmodel.sqlite3").unlink()

    rebuilt = cli(env, "audit", "rebuild")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "rebuilt from 2 records" in rebuilt.output
    again = start_audit(spawn, settings, audit_dir)
    assert again.job(j.id) == before


def test_jobs_lists_a_table_from_the_read_api(
    spawn: SpawnFn,
    broker: TestBroker,
    settings: Settings,
    audit: AuditService,
    env: dict[str, str],
) -> None:
    start_worker(spawn)
    good, bad = Job(type="resize"), flagged_job(settings)
    broker.publish_job(good)
    broker.publish_job(bad)
    audit.wait_for_status(good.id, "succeeded")
    audit.wait_for_status(bad.id, "dead")

    dead = cli(env, "jobs", "--status", "dead")
    assert dead.exit_code == 0, dead.output
    assert bad.id in dead.output and good.id not in dead.output
    assert "flagged: flags/broken is set" in dead.output
    as_json = [json.loads(line) for line in cli(env, "jobs", "--json").output.splitlines()]
    assert {(j["id"], j["status"]) for j in as_json} == {(good.id, "succeeded"), (bad.id, "dead")}

    unreachable = {**env, "AUDIT_URL": f"http://127.0.0.1:{free_port()}"}
    down = cli(unreachable, "jobs")
    assert down.exit_code == 1 and "cannot reach the audit service" in down.output


def test_a_dead_job_is_listed_shown_and_after_its_cause_is_fixed_replayed_to_success(
    spawn: SpawnFn,
    broker: TestBroker,
    settings: Settings,
    audit: AuditService,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    events = broker.events()
    start_worker(spawn)
    j = flagged_job(settings)
    tail = Tail(env, tmp_path, "--job", j.id)
    broker.publish_job(j)
    audit.wait_for_status(j.id, "dead")
    # The audit's job.dead reaches a live tail too: every outcome, not only the workers'.
    tail.wait_for_text("job.dead")
    assert "rejected: dead-lettered from" in tail.text()
    assert tail.interrupt() == 0

    listed = [json.loads(line) for line in cli(env, "dlq", "list", "--json").output.splitlines()]
    assert len(listed) == 1
    row = listed[0]
    assert (row["job_id"], row["type"], row["reason"], row["attempt"]) == (
        j.id,
        "resize",
        "rejected",
        1,
    )
    assert row["queue"] == broker.names.task_queue("resize")
    assert row["error"] == {"kind": "flagged", "message": "flags/broken is set"}
    shown = cli(env, "dlq", "show", j.id)
    assert shown.exit_code == 0 and '"x-death"' in shown.output and "fail_while" in shown.output
    assert broker.depth(broker.names.dead_queue) == 1  # looking does not take it away

    flag_path(settings).unlink()  # the cause, fixed
    replayed = cli(env, "dlq", "replay", j.id)
    assert replayed.exit_code == 0, replayed.output

    record = audit.wait_for_status(j.id, "succeeded")
    assert (record["attempts"], record["replays"], record["error"]) == (2, 1, None)
    assert [e["event"] for e in record["events"]][-3:] == [
        "job.replayed",
        "job.started",
        "job.succeeded",
    ]
    assert events.wait_for(j.id, "job.succeeded")[0]["attempt"] == 1
    assert broker.depth(broker.names.dead_queue) == 0


def test_replay_all_of_a_type_and_purge_leave_the_others_alone(
    spawn: SpawnFn,
    broker: TestBroker,
    settings: Settings,
    audit: AuditService,
    env: dict[str, str],
) -> None:
    start_worker(spawn)
    broker.publish_raw(b"\xff garbage", message_id="garbage-1")
    audit.wait_for_status("garbage-1", "dead")
    mail = Job(type="mail", params={"x": 1})
    # The mail job is dead-lettered by hand, the way the broker would at its delivery limit.
    broker.channel.basic_publish(
        broker.names.dead_exchange,
        "",
        mail.model_dump_json().encode(),
        pika.BasicProperties(
            message_id=mail.id,
            headers={
                "x-death": [
                    {
                        "reason": "delivery_limit",
                        "queue": broker.names.task_queue("mail"),
                        "count": 1,
                    }
                ]
            },
        ),
    )
    audit.wait_for_status(mail.id, "dead")

    unknown = cli(env, "dlq", "replay", "no-such-job")
    assert unknown.exit_code == 1 and "no dead letter for no-such-job" in unknown.output
    garbage = cli(env, "dlq", "replay", "garbage-1")
    assert garbage.exit_code == 1 and "cannot replay garbage-1" in garbage.output
    mails = cli(env, "dlq", "replay", "--all", "--type", "mail")
    assert mails.exit_code == 0 and f"replayed {mail.id} (mail)" in mails.output
    assert broker.depth(broker.names.task_queue("mail")) == 1
    assert audit.wait_for_status(mail.id, "submitted")["replays"] == 1

    assert cli(env, "dlq", "purge", stdin="n\n").exit_code == 1
    assert broker.depth(broker.names.dead_queue) == 1
    dropped = cli(env, "dlq", "purge", "garbage-1", "--yes")
    assert dropped.exit_code == 0 and "dropped 1" in dropped.output
    assert broker.depth(broker.names.dead_queue) == 0
