"""deploy/compose.cluster.yml on a real Docker engine: three RabbitMQ nodes clustered at start,
PostgreSQL for the shared state, an S3 server for the blobs (CI's stand-in: moto, in memory)
and services that share no volume. 200 mixed jobs, resize → render → mail pipelines among
them, flow while the node every client is connected to is killed and later started again,
and while the S3 server is paused: every job succeeds, no mail goes out twice, the audit log
verifies."""

from __future__ import annotations

import io
import json
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
from PIL import Image

from tests.support.compose import ComposeStack, wait_until

NODES = ["rabbit@rabbitmq1", "rabbit@rabbitmq2", "rabbit@rabbitmq3"]
JOBS = 200
THUMB_WIDTH = 160
# Every resize, render and mail job's kind, in turn: two fifths plain resizes, a fifth each
# renders, mails and resize → render → mail pipelines.
KINDS = ("resize", "resize", "render", "mail", "pipeline")
WORKERS = ("gateway", "resizer", "renderer", "mailer")
# A client retries a submission the gateway could not take (503 while its publishers fail
# over to another node, 429 past the key's rate, or no answer at all) with the same
# Idempotency-Key: one job each time.
RETRY_FOR_S = 120
RETRY_ON = (429, 503)


@dataclass(frozen=True)
class Submitted:
    id: str
    kind: str
    n: int


def tiny_jpeg(n: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (n % 256, 90, 200)).save(out, "JPEG", quality=85)
    return out.getvalue()


def mail(n: int, what: str) -> dict[str, Any]:
    return {"to": [f"cluster{n}@example.com"], "subject": f"{what} {n}", "text": f"{what} {n}"}


def _post(stack: ComposeStack, n: int) -> httpx.Response:
    kind = KINDS[n % len(KINDS)]
    key = {"Idempotency-Key": f"cluster-{stack.project}-{n}"}
    if kind in ("resize", "pipeline"):
        data = {"width": str(THUMB_WIDTH)}
        if kind == "pipeline":
            then = {
                "type": "render",
                "params": {"template": "document", "title": f"sheet {n}"},
                "then": {"type": "mail", "params": mail(n, "sheet")},
            }
            data["then"] = json.dumps(then)
        files = {"file": (f"{n}.jpg", tiny_jpeg(n))}
        return stack.http.post("/jobs/resize", files=files, data=data, headers=key)
    if kind == "render":
        body = {"template": "document", "data": {"blocks": [f"cluster {n}"]}}
        return stack.http.post("/jobs/render", json=body, headers=key)
    return stack.http.post("/jobs/mail", json=mail(n, "note"), headers=key)


def submit(stack: ComposeStack, n: int) -> Submitted:
    deadline = time.monotonic() + RETRY_FOR_S
    while True:
        pause = 0.5
        try:
            response = _post(stack, n)
            if response.status_code in (200, 202):
                return Submitted(response.json()["id"], KINDS[n % len(KINDS)], n)
            assert response.status_code in RETRY_ON, response.text
            pause = float(response.headers.get("Retry-After", pause))
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"job {n} not taken within {RETRY_FOR_S} s"
        time.sleep(pause)


def quorum_members(stack: ComposeStack) -> dict[str, tuple[str, list[str]]]:
    result = stack.container("rabbitmq1").exec_run(
        ["rabbitmqctl", "-q", "list_queues", "name", "type", "members", "--formatter", "json"]
    )
    assert result.exit_code == 0, result.output.decode()
    return {q["name"]: (q["type"], q["members"]) for q in json.loads(result.output)}


def await_three_nodes(stack: ComposeStack) -> None:
    """Asked of rabbitmq2, the node the test never kills: until all three run, the app too
    (a restarted node answers `ping`, its health check, a while before it has rejoined)."""
    result = stack.container("rabbitmq2").exec_run(
        ["rabbitmqctl", "await_online_nodes", "3", "--timeout", "120"]
    )
    assert result.exit_code == 0, result.output.decode()


def test_the_nodes_form_one_cluster_and_every_quorum_queue_has_a_member_on_each(
    cluster: ComposeStack,
) -> None:
    await_three_nodes(cluster)
    queues = quorum_members(cluster)
    assert {"jobs.resize", "jobs.render", "jobs.mail", "jobs.dead", "audit.events"} <= set(queues)
    for name, (kind, members) in queues.items():
        assert kind == "quorum", name
        assert sorted(members) == NODES, name


def test_no_service_shares_a_volume_and_the_workers_write_nowhere(cluster: ComposeStack) -> None:
    owners: dict[str, set[str]] = {}
    for service in ("gateway", "resizer", "renderer", "mailer", "audit", "mailsink"):
        containers = cluster.containers(service)
        assert containers, service
        for container in containers:
            container.reload()
            assert container.attrs["HostConfig"]["ReadonlyRootfs"], service
            mounts = container.attrs["Mounts"]
            if service in WORKERS:
                assert mounts == [], f"{service} mounts {mounts}"
            for mount in mounts:
                owners.setdefault(mount.get("Name") or mount["Source"], set()).add(service)
    shared = {volume: users for volume, users in owners.items() if len(users) > 1}
    assert shared == {}
    assert set().union(*owners.values()) == {"audit", "mailsink"}  # the log, the mailbox


def test_jobs_survive_a_killed_broker_node_and_a_paused_blob_store(
    cluster: ComposeStack,
) -> None:
    await_three_nodes(cluster)
    node, s3 = cluster.container("rabbitmq1"), cluster.container("s3")
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(submit, cluster, n) for n in range(JOBS)]
        wait_until("a quarter of the jobs taken", lambda: _done(futures) >= JOBS // 4, 120)
        try:
            node.kill()  # SIGKILL the node every client chose first: they fail over
            time.sleep(8)
            s3.pause()
            time.sleep(5)
        finally:  # both back whatever happened above
            s3.reload()
            if s3.status == "paused":
                s3.unpause()
            time.sleep(5)
            node.reload()
            if node.status != "running":
                node.start()
        submitted = [future.result() for future in futures]
    cluster.wait_healthy(["rabbitmq1"], timeout=180)
    await_three_nodes(cluster)

    for service in ("resizer", "mailer", "audit"):  # the kill mattered: they moved nodes
        moved = r'"node": "rabbitmq[23]:5672", "event": "broker_connected"'
        assert re.search(moved, cluster.logs(service, tail=100_000)), service

    records = cluster.wait_finished([s.id for s in submitted], timeout=600)

    assert {r["status"] for r in records.values()} == {"succeeded"}
    assert len(records) == JOBS, "one job per submission, retried or not"
    counts = {kind: sum(s.kind == kind for s in submitted) for kind in KINDS}
    expected = {
        "resize": counts["resize"] + counts["pipeline"],
        "render": counts["render"] + counts["pipeline"],
        "mail": counts["mail"] + counts["pipeline"],
    }
    every_one_succeeded = {kind: {"succeeded": n} for kind, n in expected.items()}
    seen: list[dict[str, Any]] = []

    def all_succeeded() -> bool:
        seen.append(dict(cluster.audit("/stats").json()["by_type"]))
        return seen[-1] == every_one_succeeded

    try:
        wait_until("every follow-up to succeed", all_succeeded, 300, every=1)
    except AssertionError:
        raise AssertionError(f"the audit counts {seen[-1]}, not {every_one_succeeded}") from None
    _check_thumbnails(cluster, [s for s in submitted if s.kind in ("resize", "pipeline")])
    _check_mail(cluster, submitted)
    verified = cluster.container("audit").exec_run(["jobsuite", "audit", "verify"])
    output = verified.output.decode()
    assert verified.exit_code == 0, output
    found = re.search(r"audit log intact: (\d+) records", output)
    # Three records a job at least (submitted, started, succeeded), but for a job.submitted
    # the gateway gave up on after its resends and said so (refused through a long election).
    given_up = cluster.logs("gateway", tail=100_000).count('"event": "event_not_published"')
    assert found and int(found.group(1)) >= 3 * sum(expected.values()) - given_up, output


def _done(futures: list[Future[Submitted]]) -> int:
    return sum(future.done() for future in futures)


def _check_thumbnails(stack: ComposeStack, resized: list[Submitted]) -> None:
    for job in resized:
        response = stack.http.get(f"/jobs/{job.id}/result")
        assert response.status_code == 200, (job, response.text)
        assert Image.open(io.BytesIO(response.content)).width == THUMB_WIDTH, job


def _check_mail(stack: ComposeStack, submitted: list[Submitted]) -> None:
    """One mail per mail job, each subject once; the sink never saw one a second time."""
    wanted = sorted(
        [f"note {s.n}" for s in submitted if s.kind == "mail"]
        + [f"sheet {s.n}" for s in submitted if s.kind == "pipeline"]
    )

    def subjects() -> list[str] | None:
        held = sorted(m["subject"] for m in stack.mailsink("/messages").json())
        return held if len(held) >= len(wanted) else None

    assert wait_until("every mail in the sink", subjects, 120, every=1) == wanted
    assert "duplicate_message_id_dropped" not in stack.logs("mailsink", tail=100_000)
