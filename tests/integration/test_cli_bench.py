"""`jobsuite bench` against a real gateway, resizer and audit service of the test namespace."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cli.app import app
from shared.config import Settings
from tests.conftest import SpawnFn
from tests.support.audit import start_audit
from tests.support.broker import TestBroker
from tests.support.gateway import start_gateway
from tests.support.processes import service_env


def test_bench_runs_resize_jobs_to_the_end_and_reports_throughput_and_latency(
    broker: TestBroker, spawn: SpawnFn, settings: Settings, tmp_path: Path
) -> None:
    audit = start_audit(spawn, settings, tmp_path / "audit")
    gateway = start_gateway(spawn, settings, audit_url=audit.url)
    spawn("services.resizer").wait_logged("consuming")
    cli = CliRunner(
        env=service_env(settings, GATEWAY_URL=gateway.url, JOBSUITE_API_KEY=gateway.key)
    )
    result = cli.invoke(app, ["bench", "--type", "resize", "--jobs", "10", "--concurrency", "3"])
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.stdout
    lines = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if "│" in line}
    assert lines["succeeded"].split("│")[2].strip() == "10"
    assert lines["failed"].split("│")[2].strip() == "0"
    assert "jobs/s" in lines["throughput"]
    assert "ms" in lines["latency p99"]


def test_bench_refuses_an_unknown_job_type(settings: Settings) -> None:
    result = CliRunner(env=service_env(settings)).invoke(app, ["bench", "--type", "fax"])
    assert result.exit_code == 2
    assert "--type must be one of" in result.output
