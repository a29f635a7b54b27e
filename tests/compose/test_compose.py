"""`docker compose up --scale resizer=4` on a real Docker engine: spread, kill -9, SIGTERM,
broker restart, a render → mail pipeline, the audit log and the broker's credentials.

The tests share one compose project and run in file order; each leaves four resizers up."""

from __future__ import annotations

import io
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from docker.models.containers import Container
from PIL import Image

from tests.support.compose import ComposeStack, hostnames, wait_until
from tests.support.pdfs import open_pdf, text_of

RESIZERS = 4
# What every job of this module should have left in the audit log, checked at the end.
SUBMITTED: list[str] = []


def small_jpeg(seed: int) -> bytes:
    image = Image.radial_gradient("L").resize((1600, 1200)).convert("RGB")
    image.putpixel((seed % 1600, 0), (seed % 256, 0, 0))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def slow_png() -> bytes:
    """A 6000 x 6000 PNG that takes the resizer a few seconds to turn into a 5000 px PNG."""
    image = Image.effect_mandelbrot((6000, 6000), (-2, -1.5, 1, 1.5), 100).convert("RGB")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def submit_slow(stack: ComposeStack, png: bytes) -> str:
    job_id = stack.submit_resize(png, "fractal.png", width="5000", format="png")
    SUBMITTED.append(job_id)
    return job_id


def test_forty_jobs_spread_over_four_replicas_and_are_downloadable(stack: ComposeStack) -> None:
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda i: stack.submit_resize(small_jpeg(i), width="400"), range(40)))
    SUBMITTED.extend(ids)

    records = stack.wait_finished(ids)

    assert {r["status"] for r in records.values()} == {"succeeded"}
    workers = {name for r in records.values() for name in hostnames(r, "job.succeeded")}
    replicas = {c.attrs["Config"]["Hostname"] for c in stack.containers("resizer")}
    assert len(replicas) == RESIZERS
    assert workers == replicas, "every replica takes a share, and reports its own host name"
    for job_id in ids:
        response = stack.http.get(f"/jobs/{job_id}/result")
        assert response.status_code == 200, response.text
        assert Image.open(io.BytesIO(response.content)).size == (400, 300)


def test_a_resizer_killed_mid_job_leaves_the_job_to_another_replica(
    stack: ComposeStack,
) -> None:
    job_id = submit_slow(stack, slow_png())
    victim = stack.by_hostname("resizer", stack.wait_started(job_id))

    victim.kill()  # SIGKILL: no goodbye, the broker sees the connection drop

    record = stack.wait_finished([job_id])[job_id]
    assert record["status"] == "succeeded"
    (winner,) = hostnames(record, "job.succeeded")
    assert winner != victim.attrs["Config"]["Hostname"]
    assert len(hostnames(record, "job.started")) == 2, "started twice: once per replica"
    response = stack.http.get(f"/jobs/{job_id}/result")
    assert Image.open(io.BytesIO(response.content)).size == (5000, 5000)
    _back_to_full_strength(stack, victim)


def test_a_resizer_stopped_mid_job_finishes_and_acks_before_it_exits(
    stack: ComposeStack,
) -> None:
    job_id = submit_slow(stack, slow_png())
    hostname = stack.wait_started(job_id)
    container = stack.by_hostname("resizer", hostname)

    container.stop(timeout=120)  # what `docker compose stop` does: SIGTERM, then wait

    container.reload()
    assert container.attrs["State"]["ExitCode"] == 0
    record = stack.wait_finished([job_id], timeout=30)[job_id]
    assert record["status"] == "succeeded"
    assert hostnames(record, "job.succeeded") == [hostname], "finished by the stopped replica"
    assert hostnames(record, "job.started") == [hostname], "acked: never redelivered"
    _back_to_full_strength(stack, container)


def test_a_broker_restart_with_a_backlog_loses_nothing_and_nobody_restarts(
    stack: ComposeStack,
) -> None:
    services = [*stack.containers("resizer"), stack.container("gateway"), stack.container("audit")]
    started_at = {c.id: c.attrs["State"]["StartedAt"] for c in services}
    resizers = stack.containers("resizer")
    for resizer in resizers:
        resizer.pause()  # a backlog builds up in the queue while nobody takes jobs
    try:
        ids = [stack.submit_resize(small_jpeg(100 + i), width="320") for i in range(20)]
        SUBMITTED.extend(ids)
        stack.container("rabbitmq").restart(timeout=60)
    finally:
        for resizer in resizers:
            resizer.unpause()
    stack.wait_healthy(["rabbitmq"])

    # The gateway takes jobs again once its publishers have reconnected.
    after = wait_until("the gateway to accept a job", lambda: _try_submit(stack), 90, every=1)
    SUBMITTED.append(after)
    records = stack.wait_finished([*ids, after], timeout=240)

    assert {r["status"] for r in records.values()} == {"succeeded"}
    for container in services:
        container.reload()
        assert container.attrs["State"]["StartedAt"] == started_at[container.id], container.name
        assert container.attrs["RestartCount"] == 0, container.name


def test_a_render_then_mail_pipeline_lands_in_the_mail_sink(stack: ComposeStack) -> None:
    render_id = stack.submit_json(
        "render",
        {
            "template": "document",
            "title": "Compose report",
            "data": {"blocks": ["Rendered in a container, mailed by another."]},
            "then": {
                "type": "mail",
                "params": {
                    "to": ["ada@example.com"],
                    "subject": "Your compose report",
                    "text": "The report is attached.",
                },
            },
        },
    )
    SUBMITTED.append(render_id)

    def delivered() -> list[dict[str, object]]:
        messages = stack.mailsink("/messages").json()
        return [m for m in messages if m["subject"] == "Your compose report"]

    (message,) = wait_until("the mail in the sink", delivered, 120, every=1)
    detail = stack.mailsink(f"/messages/{message['id']}").json()
    (attachment,) = detail["attachments"]
    assert attachment["content_type"] == "application/pdf"
    pdf = stack.mailsink(f"/messages/{message['id']}/attachments/{attachment['name']}")
    assert "Rendered in a container, mailed by another." in text_of(open_pdf(pdf.content))


def test_the_audit_log_holds_every_event_and_its_chain_verifies(stack: ComposeStack) -> None:
    records = stack.wait_finished(SUBMITTED)
    for job_id, record in records.items():
        names = [e["event"] for e in record["events"]]
        assert names[0] == "job.submitted", (job_id, names)
        assert "job.started" in names and names[-1] == "job.succeeded", (job_id, names)

    audit = stack.container("audit")
    result = audit.exec_run(["jobsuite", "audit", "verify"])
    output = result.output.decode()
    assert result.exit_code == 0, output
    found = re.search(r"audit log intact: (\d+) records", output)
    assert found, output
    assert int(found.group(1)) >= sum(len(r["events"]) for r in records.values())


FORGE = (
    "import json, sys, uuid, pika\n"
    "url, job_id, user = sys.argv[1:]\n"
    "event = {'v': 1, 'event_id': str(uuid.uuid4()), 'event': 'job.dead', 'job_id': job_id,\n"
    "         'type': 'resize', 'service': 'audit', 'instance': 'forger:1',\n"
    "         'at': '2030-01-01T00:00:00+00:00', 'error': {'kind': 'rejected', 'message': 'x'}}\n"
    "connection = pika.BlockingConnection(pika.URLParameters(url))\n"
    "channel = connection.channel()\n"
    "channel.confirm_delivery()\n"
    "props = pika.BasicProperties(user_id=user, message_id=event['event_id'])\n"
    "channel.basic_publish('events', '', json.dumps(event).encode(), props)\n"
    "connection.close()\n"
)


def test_each_service_publishes_as_its_own_broker_user_and_a_forgery_is_not_believed(
    stack: ComposeStack,
) -> None:
    job_id = stack.submit_resize(small_jpeg(7), width="100")
    record = stack.wait_finished([job_id])[job_id]
    assert {(e["event"], e["publisher"], e["refused"]) for e in record["events"]} == {
        ("job.submitted", "gateway", None),
        ("job.started", "resizer", None),
        ("job.succeeded", "resizer", None),
    }

    # The administrator may publish (it is not a service), but not job.dead (AUDIT_PUBLISHERS).
    url = f"amqp://jobsuite:{stack.password}@rabbitmq:5672/%2F"
    forged = stack.container("gateway").exec_run(["python", "-c", FORGE, url, job_id, "jobsuite"])
    assert forged.exit_code == 0, forged.output.decode()

    def refused() -> dict[str, Any] | None:
        events = stack.record(job_id).get("events", [])
        return next((e for e in events if e["event"] == "job.dead"), None)

    dead = wait_until("the forged job.dead to be recorded", refused, 30, every=0.5)
    assert dead["publisher"] == "jobsuite" and "may not publish job.dead" in dead["refused"]
    assert stack.record(job_id)["status"] == "succeeded"


def test_a_clients_key_sees_only_its_own_jobs_and_the_mail_view_and_audit_ask_for_a_login(
    stack: ComposeStack,
) -> None:
    alice, bob = stack.create_key("alice"), stack.create_key("bob")
    as_alice = {"Authorization": f"Bearer {alice}"}
    as_bob = {"Authorization": f"Bearer {bob}"}
    submitted = stack.http.post(
        "/jobs/resize",
        files={"file": ("a.jpg", small_jpeg(11))},
        data={"width": "40"},
        headers=as_alice,
    )
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    assert stack.wait_finished([job_id])[job_id]["status"] == "succeeded"  # the admin sees it

    mine = stack.http.get(f"/jobs/{job_id}", headers=as_alice)
    assert (mine.status_code, mine.json()["client"]) == (200, "alice")
    assert stack.http.get(f"/jobs/{job_id}/result", headers=as_alice).status_code == 200
    unknown = "00000000-0000-4000-8000-000000000000"
    for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/result"):
        theirs = stack.http.get(path, headers=as_bob)
        nobodys = stack.http.get(path.replace(job_id, unknown), headers=as_bob)
        assert theirs.status_code == nobodys.status_code == 404
        assert theirs.json()["detail"].replace(job_id, unknown) == nobodys.json()["detail"]
    no_key = stack.http.get(f"/jobs/{job_id}", headers={"Authorization": ""})
    assert no_key.status_code == 401 and no_key.headers["www-authenticate"] == "Bearer"

    # The mail view and the audit API are closed to anyone without their login.
    sink = f"http://127.0.0.1:{stack.mailsink_port}/messages"
    assert httpx.get(sink, timeout=10).status_code == 401
    assert stack.mailsink("/messages").status_code == 200
    audit = stack.container("gateway").exec_run(
        ["python", "-c", AUDIT_WITHOUT_KEY, f"http://audit:8081/jobs/{job_id}"]
    )
    assert audit.output.decode().strip() == "401", audit.output.decode()


def test_the_console_on_the_published_port_shows_jobs_queues_and_dead_letters(
    stack: ComposeStack,
) -> None:
    submitted = stack.http.post(
        "/jobs/resize", files={"file": ("c.jpg", small_jpeg(12))}, data={"width": "30"}
    )
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    stack.wait_finished([job_id])
    console = httpx.Client(
        base_url=f"http://127.0.0.1:{stack.audit_port}",
        auth=("admin", f"audit-{stack.password}"),  # AUDIT_API_KEY, an admin key
        timeout=30,
    )
    assert httpx.get(f"http://127.0.0.1:{stack.audit_port}/", timeout=10).status_code == 401
    jobs = console.get("/")
    assert jobs.status_code == 200 and f'data-id="{job_id}"' in jobs.text
    # Queues and dead letters are asked of the broker as the `dlq` user (AUDIT_DLQ_AMQP_URL).
    queues = console.get("/console/queues")
    assert queues.status_code == 200, queues.text
    resize = queues.text[queues.text.index("jobs.resize</code>") :].split("</tr>")[0]
    _ready, consumers, *_rates = map(int, re.findall(r'<td class="number">(\d+)</td>', resize))
    assert consumers >= 1  # the resizers (four, but an earlier test may be restarting one)
    dead = console.get("/console/dead")
    assert dead.status_code == 200 and "dead letter" in dead.text, dead.text


AUDIT_WITHOUT_KEY = """
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=5)
    print("200")
except urllib.error.HTTPError as e:
    print(e.code)
"""


def test_guest_is_refused_on_the_compose_network(stack: ComposeStack) -> None:
    probe = (
        "import sys, pika\n"
        "try:\n"
        "    pika.BlockingConnection(pika.URLParameters(sys.argv[1])).close()\n"
        "except pika.exceptions.ProbableAuthenticationError:\n"
        "    print('refused'); sys.exit(3)\n"
        "print('accepted')\n"
    )
    gateway = stack.container("gateway")

    def connect(user: str, password: str) -> tuple[int, str]:
        url = f"amqp://{user}:{password}@rabbitmq:5672/%2F"
        result = gateway.exec_run(["python", "-c", probe, url])
        return result.exit_code, result.output.decode().strip()

    assert connect("guest", "guest") == (3, "refused")
    # The same probe gets in with the configured user: the refusal is about guest.
    assert connect("jobsuite", stack.password) == (0, "accepted")


def _try_submit(stack: ComposeStack) -> str | None:
    response = stack.http.post(
        "/jobs/resize", files={"file": ("late.jpg", small_jpeg(999))}, data={"width": "200"}
    )
    return str(response.json()["id"]) if response.status_code == 202 else None


def _back_to_full_strength(stack: ComposeStack, container: Container) -> None:
    """Start the replica a test stopped (unless Docker's restart policy already did)."""
    container.reload()
    if container.status != "running":
        container.start()
    stack.wait_consuming("resizer", RESIZERS)
