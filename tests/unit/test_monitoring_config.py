"""The compose profile `monitoring`, read as files: opt-in and on loopback only, scraping every
service that serves metrics the way that service answers, and asking only for metrics the
services have (a renamed metric would leave an empty console, not an error)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from services.audit.metrics import AuditMetrics
from services.gateway.metrics import GatewayMetrics
from shared.http_metrics import HttpMetrics
from shared.jobtypes import JOB_TYPE_NAMES
from shared.metrics import WorkerMetrics

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
SCRAPE: list[dict[str, Any]] = yaml.safe_load((MONITORING / "prometheus.yml").read_text())[
    "scrape_configs"
]


def scrape_job(name: str) -> dict[str, Any]:
    (job,) = (j for j in SCRAPE if j["job_name"] == name)
    return job


def test_prometheus_runs_only_with_the_monitoring_profile_and_publishes_on_loopback() -> None:
    with_profiles = {name: s["profiles"] for name, s in SERVICES.items() if "profiles" in s}
    assert with_profiles == {"prometheus": ["monitoring"]}, "the default `up` stays as it was"
    for port in SERVICES["prometheus"]["ports"]:
        assert port.startswith("127.0.0.1:"), port


def test_every_worker_replica_is_found_by_its_service_name_on_its_metrics_port() -> None:
    workers = {
        name: int(s["environment"]["METRICS_PORT"])
        for name, s in SERVICES.items()
        if "METRICS_PORT" in s.get("environment", {})
    }
    assert workers, "compose sets METRICS_PORT for the workers"
    (dns,) = scrape_job("workers")["dns_sd_configs"]
    assert (dns["type"], set(dns["names"])) == ("A", set(workers))
    assert {dns["port"]} == set(workers.values())


def test_the_http_services_are_scraped_by_a_host_name_they_answer() -> None:
    # Compose's default ALLOWED_HOSTS, from `${ALLOWED_HOSTS:-…}`.
    found = re.search(
        r"\$\{ALLOWED_HOSTS:-([^}]*)\}", SERVICES["gateway"]["environment"]["ALLOWED_HOSTS"]
    )
    assert found
    allowed = set(found.group(1).split(","))
    for service, port in (("gateway", 8080), ("audit", 8081)):
        (static,) = scrape_job(service)["static_configs"]
        assert static["targets"] == [f"{service}:{port}"]
        assert service in allowed


def exposed_names() -> set[str]:
    """Every sample name the services' registries expose (labels set up front, so even before
    the first job)."""
    registries = [
        WorkerMetrics(CollectorRegistry(), "resizer", JOB_TYPE_NAMES).registry,
        GatewayMetrics().registry,
        AuditMetrics().registry,
    ]
    HttpMetrics(http := CollectorRegistry()).observe("/healthz", "GET", 200, 0.01)
    return {s.name for r in [*registries, http] for family in r.collect() for s in family.samples}


def test_the_console_and_the_rules_ask_only_for_metrics_the_services_expose() -> None:
    exposed = exposed_names()
    for path in (MONITORING / "consoles" / "jobsuite.html", MONITORING / "rules.yml"):
        used = set(re.findall(r"\bjobsuite_[a-z_]+", path.read_text()))
        assert used, path
        assert used <= exposed, (path.name, used - exposed)
