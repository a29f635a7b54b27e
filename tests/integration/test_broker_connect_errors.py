"""A worker or a CLI command that cannot use the broker says why in one line per attempt:
a closed port, a wrong password (against the real broker: guest's password is never
changed, the URL carries a wrong one), a virtual host that does not exist, a URL without
its scheme. Real processes, their whole output read: no traceback, no pika lines, each
attempt one line naming the cause and AMQP_URL."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import pytest

from shared.config import Settings
from tests.conftest import SpawnFn, with_settings
from tests.support.ports import free_port
from tests.support.processes import ROOT, ServiceProcess, service_env

JOBSUITE = [sys.executable, "-c", "from cli.app import main; main()"]
WORKER = "services.resizer"
# Attempts to watch: the third comes within 1.5 s of the first (back-off 0.5 s, then 1 s).
ATTEMPTS = 3


@dataclass(frozen=True)
class Case:
    cause: str
    says: str  # words the line must hold besides AMQP_URL


def closed_port(s: Settings) -> tuple[str, Case]:
    port = free_port()
    url = f"amqp://guest:guest@127.0.0.1:{port}/%2F"
    return url, Case("refused", f"is RabbitMQ running on 127.0.0.1:{port}?")


def wrong_password(s: Settings) -> tuple[str, Case]:
    url = "amqp://guest:not-the-password@127.0.0.1:5672/%2F"
    return url, Case("bad_credentials", "refused the login of user 'guest'")


def missing_vhost(s: Settings) -> tuple[str, Case]:
    vhost = f"{s.namespace}-no-such-vhost"
    return f"amqp://guest:guest@127.0.0.1:5672/{vhost}", Case("vhost", f"'{vhost}'")


CASES = {"closed port": closed_port, "wrong password": wrong_password, "no vhost": missing_vhost}


def watch(spawn: SpawnFn, settings: Settings, url: str, **env: str) -> ServiceProcess:
    """A worker given `url`, left to retry ATTEMPTS times, then stopped."""
    worker = spawn(WORKER, settings_override=with_settings(settings, amqp_url=url), **env)
    deadline = time.monotonic() + 60
    while worker.log_path.read_text().count("broker_connect_failed") < ATTEMPTS:
        assert worker.proc.poll() is None and time.monotonic() < deadline, worker.tail()
        time.sleep(0.05)
    worker.stop()
    return worker


def assert_one_line_per_attempt(worker: ServiceProcess, case: Case) -> list[dict[str, Any]]:
    text = worker.log_path.read_text()
    assert "Traceback" not in text, text
    lines = worker.log_lines()
    assert not [line for line in lines if str(line.get("logger", "")).startswith("pika")], text
    assert not [line for line in lines if "exception" in line], text  # a JSON traceback
    failed = worker.logged("broker_connect_failed")
    # Attempts 1, 2, …: each said once, so one line per back-off step.
    assert [line["attempt"] for line in failed] == list(range(1, len(failed) + 1)), text
    assert len(failed) >= ATTEMPTS, text  # it retried
    for line in failed:
        assert line["cause"] == case.cause, line
        assert case.says in line["error"] and "AMQP_URL" in line["error"], line
        assert "\n" not in line["error"]
    # Nothing else but the stop: shutdown_requested and worker_stopped.
    others = [line["event"] for line in lines if line.get("event") != "broker_connect_failed"]
    assert others == ["shutdown_requested", "worker_stopped"], text
    return failed


@pytest.mark.parametrize("make", CASES.values(), ids=CASES.keys())
def test_a_worker_says_each_attempt_in_one_line(
    make: Any, spawn: SpawnFn, settings: Settings
) -> None:
    url, case = make(settings)
    worker = watch(spawn, settings, url)
    assert_one_line_per_attempt(worker, case)
    assert worker.proc.returncode == 0  # stopped cleanly by SIGTERM while retrying


def test_on_a_terminal_format_too_one_line_per_attempt(spawn: SpawnFn, settings: Settings) -> None:
    # The console renderer drew pika's traceback with its locals: some 40 lines a retry.
    url, case = wrong_password(settings)
    worker = watch(spawn, settings, url, LOG_FORMAT="console")
    text = worker.log_path.read_text()
    lines = text.splitlines()
    attempts = [line for line in lines if "broker_connect_failed" in line]
    assert "Traceback" not in text and "pika" not in text, text
    assert len(attempts) >= ATTEMPTS and all(case.says in line for line in attempts), text
    assert len(lines) == len(attempts) + 2, text  # and the two lines of the stop


def test_a_url_without_its_scheme_stops_the_worker_with_one_line(
    spawn: SpawnFn, settings: Settings
) -> None:
    worker = spawn(WORKER, settings_override=with_settings(settings, amqp_url="localhost:5672"))
    assert worker.wait(15) == 2
    text = worker.log_path.read_text()
    assert text.count("\n") == 1, text
    assert text.startswith("jobsuite: configuration error: AMQP_URL must look like"), text
    assert "amqp://user:pass@host:port/vhost" in text and "'localhost:5672'" in text, text


def jobsuite(settings: Settings, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = service_env(settings, AMQP_URL=url, COLUMNS="80")
    return subprocess.run(
        [*JOBSUITE, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("make", CASES.values(), ids=CASES.keys())
def test_a_cli_command_fails_with_one_line(make: Any, settings: Settings) -> None:
    url, case = make(settings)
    done = jobsuite(settings, url, "dlq", "list")
    assert done.returncode == 1, done
    assert done.stdout == "", done
    (line,) = done.stderr.splitlines()
    assert line.startswith("jobsuite: ") and case.says in line and "AMQP_URL" in line, line


def test_a_cli_command_with_a_url_without_its_scheme_fails_with_one_line(
    settings: Settings,
) -> None:
    done = jobsuite(settings, "localhost:5672", "dlq", "list")
    assert done.returncode == 2, done
    (line,) = done.stderr.splitlines()
    assert line.startswith("jobsuite: configuration error: AMQP_URL must look like"), line


def test_the_cli_never_shows_the_password_of_a_bad_url(settings: Settings) -> None:
    done = jobsuite(settings, "amqp//guest:s3cret-pw@localhost:5672/", "dlq", "list")
    assert done.returncode == 2, done
    assert "s3cret-pw" not in done.stderr and "guest:***@" in done.stderr, done.stderr
    assert json.dumps(done.stderr).count("\\n") == 1
