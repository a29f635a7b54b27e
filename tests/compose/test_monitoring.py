"""The compose profile `monitoring` on the shared stack (conftest): Prometheus scrapes every
service, each of the four resizers on its own (found by the service's DNS name), its job
counters follow the gateway's own, and the jobsuite console shows them."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.compose.test_compose import RESIZERS, small_jpeg
from tests.support.compose import ComposeStack, wait_until

EXPECTED_UP = {
    "prometheus": 1,
    "gateway": 1,
    "audit": 1,
    "resizer": RESIZERS,
    "renderer": 1,
    "mailer": 1,
}
CONFIG = "/etc/prometheus/jobsuite/prometheus.yml"


def targets(stack: ComposeStack) -> list[dict[str, Any]]:
    response = stack.prometheus("/api/v1/targets", state="active")
    assert response.status_code == 200, response.text
    return list(response.json()["data"]["activeTargets"])


def query(stack: ComposeStack, expr: str) -> float | None:
    """An instant query's single value; None when it has no series."""
    response = stack.prometheus("/api/v1/query", query=expr)
    assert response.status_code == 200, response.text
    result = response.json()["data"]["result"]
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else None


FETCH = "import sys, urllib.request as u; print(u.urlopen(sys.argv[1], timeout=5).read().decode())"


def sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    raise AssertionError(f"no {name}{labels} in:\n{text}")


def own_count(stack: ComposeStack, service: str, port: int, name: str, **labels: str) -> float:
    """The sum of a sample over the service's replicas, each read from its own /metrics
    inside its container: what Prometheus should show once it has scraped them all."""
    total = 0.0
    for container in stack.containers(service):
        result = container.exec_run(["python", "-c", FETCH, f"http://127.0.0.1:{port}/metrics"])
        assert result.exit_code == 0, result.output.decode()
        total += sample(result.output.decode(), name, **labels)
    return total


def wait_for(what: str, check: Any, timeout: float, last: Any) -> Any:
    """wait_until, failing with the last thing seen (`last()`), not only the wait."""
    try:
        return wait_until(what, check, timeout, every=1)
    except AssertionError as e:
        raise AssertionError(f"{e}; last seen: {last()}") from None


def test_prometheus_scrapes_every_service_and_every_resizer_replica(stack: ComposeStack) -> None:
    def every_target_up() -> list[dict[str, Any]] | None:
        seen = targets(stack)
        up = Counter(t["labels"]["job"] for t in seen if t["health"] == "up")
        return seen if dict(up) == EXPECTED_UP and len(seen) == sum(EXPECTED_UP.values()) else None

    def health() -> list[tuple[str, str, str, str]]:
        return [
            (t["labels"]["job"], t["labels"]["instance"], t["health"], t["lastError"])
            for t in targets(stack)
        ]

    seen = wait_for("every target up", every_target_up, 120, health)

    # One target per resizer container, by its address on the compose network.
    scraped = {t["labels"]["instance"] for t in seen if t["labels"]["job"] == "resizer"}
    addresses = {
        f"{network['IPAddress']}:9100"
        for container in stack.containers("resizer")
        for network in container.attrs["NetworkSettings"]["Networks"].values()
    }
    assert scraped == addresses
    # The configuration and its rules pass Prometheus' own check, in the image that runs them.
    checked = stack.container("prometheus").exec_run(["promtool", "check", "config", CONFIG])
    assert checked.exit_code == 0, checked.output.decode()
    rules = stack.prometheus("/api/v1/rules").json()["data"]["groups"]
    assert {r["name"] for g in rules for r in g["rules"]} == {
        "JobsuiteTargetDown",
        "JobsuiteDeadLetters",
        "JobsuiteAuditLagging",
    }


def test_job_counts_reach_prometheus_and_the_jobsuite_console(stack: ComposeStack) -> None:
    ids = [stack.submit_resize(small_jpeg(300 + i), width="120") for i in range(3)]
    assert {r["status"] for r in stack.wait_finished(ids).values()} == {"succeeded"}
    counts = {
        'sum(jobsuite_jobs_submitted_total{type="resize"})': own_count(
            stack, "gateway", 8080, "jobsuite_jobs_submitted_total", type="resize"
        ),
        'sum(jobsuite_jobs_total{type="resize",outcome="succeeded"})': own_count(
            stack, "resizer", 9100, "jobsuite_jobs_total", type="resize", outcome="succeeded"
        ),
        'sum(jobsuite_audit_events_total{event="job.succeeded"})': own_count(
            stack, "audit", 8081, "jobsuite_audit_events_total", event="job.succeeded"
        ),
    }
    # Counts since each process started: at least this test's jobs.
    assert min(counts.values()) >= len(ids), counts
    # Each target is scraped at its own moment: wait for every count to arrive.
    for expr, expected in counts.items():
        wait_for(
            f"{expr} == {expected:.0f}",
            lambda expr=expr, expected=expected: query(stack, expr) == expected,
            60,
            lambda expr=expr: query(stack, expr),
        )
    assert query(stack, "max(jobsuite_audit_lag_events)") is not None
    submitted, succeeded = list(counts.values())[:2]

    page = stack.prometheus("/consoles/jobsuite.html")
    assert page.status_code == 200, page.text
    html = page.text
    row = re.search(r'<tr data-type="resize">(.*?)</tr>', html, re.DOTALL)
    assert row, html
    cells = dict(re.findall(r'<td class="text-right ([a-z-]+)">\s*([^<]*?)\s*</td>', row.group(1)))
    assert cells["submitted"] == f"{submitted:.0f}", row.group(1)
    assert cells["succeeded"] == f"{succeeded:.0f}", row.group(1)
    assert cells["failed"] != "-" and cells["dead"] != "-", row.group(1)
    assert f'data-job="resizer">{RESIZERS} / {RESIZERS}<' in html, html
    assert re.search(r'id="audit-lag">\s*<a[^>]*>\d', html), html
    for graph in ("submitted", "outcomes", "duration", "in-progress", "dead", "confirm", "lag"):
        assert f'id="{graph}-graph"' in html
