"""`make run`'s launcher (shared/run_local.py) and its ready line (shared/readiness.py), without
starting the suite: tests/e2e/test_make_run.py runs the whole of it in a terminal."""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from honcho.printer import Message

from shared.config import Settings
from shared.readiness import (
    Probe,
    consumer_probe,
    http_probe,
    parse_replicas,
    probes,
    ready_line,
    wait_ready,
)
from shared.run_local import ClosablePrinter, child_env, parse_concurrency
from tests.support.processes import ROOT, processes_of


def line(text: str) -> Message:
    return Message("line", text, datetime.datetime.now(), "gateway.1", None)


def test_a_printer_whose_reader_is_gone_stops_the_suite_once_and_raises_nothing(
    tmp_path: Path,
) -> None:
    read_end, write_end = os.pipe()
    output = os.fdopen(write_end, "w")
    closed: list[bool] = []
    printer = ClosablePrinter(output, on_closed=lambda: closed.append(True))
    printer.write(line("before"))
    assert os.read(read_end, 1000).endswith(b"gateway.1 | before\n")

    os.close(read_end)  # tee killed by the same Ctrl-C
    printer.write(line("SIGINT received"))
    printer.write(line("sending SIGTERM to gateway.1"))
    assert closed == [True]
    output.close()  # what is still buffered goes to /dev/null: no error at exit either


def test_services_log_for_people_unless_told_otherwise() -> None:
    assert child_env({"PATH": "/bin"})["LOG_FORMAT"] == "console"
    assert child_env({"LOG_FORMAT": "json"})["LOG_FORMAT"] == "json"


def test_scale_is_read_as_honcho_reads_it() -> None:
    assert parse_concurrency("resizer=4,renderer=2") == {"resizer": 4, "renderer": 2}
    assert parse_concurrency(None) == {}
    with pytest.raises(SystemExit, match="NAME=COUNT"):
        parse_concurrency("resizer")
    assert parse_replicas("gateway=1,resizer=4") == {"gateway": 1, "resizer": 4}


def test_the_ready_line_names_every_url_a_person_opens() -> None:
    settings = Settings(gateway_port=18080, mailsink_http_port=18025, audit_url="http://x:1/")
    text = ready_line(settings)
    assert "gateway http://localhost:18080 (API docs http://localhost:18080/docs)" in text
    assert "console http://x:1/," in text
    assert "mail view http://localhost:18025/" in text
    assert "\n" not in text


def test_each_known_process_gets_a_probe_and_unknown_ones_none() -> None:
    found = probes(Settings(), {"gateway": 1, "resizer": 4, "mailer": 1, "custom": 1})
    assert [p.name for p in found] == ["gateway", "resizer", "mailer"]


def test_wait_ready_waits_for_every_probe_and_says_once_what_is_late() -> None:
    answers = {"a": iter([None]), "b": iter(["starting", "starting", "starting", None])}
    checks = [Probe(name, lambda name=name: next(answers[name])) for name in answers]
    said: list[str] = []
    assert wait_ready(checks, said.append, stopped=lambda: False, patience=0.0, every=0.01)
    assert said == ["not ready after 0 s: b: starting"]


def test_wait_ready_gives_up_when_stopped() -> None:
    never = Probe("gateway", lambda: "down")
    assert not wait_ready([never], print, stopped=lambda: True)


@pytest.fixture
def health_server() -> Iterator[tuple[str, list[int]]]:
    """An HTTP server whose /healthz answers the status at the head of a list."""
    statuses = [503]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(statuses[0] if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", statuses
    finally:
        server.shutdown()
        server.server_close()


def test_an_http_service_is_ready_when_its_healthz_says_200(
    health_server: tuple[str, list[int]],
) -> None:
    url, statuses = health_server
    probe = http_probe("audit", url)
    assert probe.check() == f"{url}/healthz answers 503"
    statuses[0] = 200
    assert probe.check() is None
    closed = http_probe("audit", "http://127.0.0.1:9")  # discard port: nobody listens
    assert "does not answer" in str(closed.check())


def test_a_worker_is_not_ready_without_a_broker() -> None:
    start = time.monotonic()
    probe = consumer_probe(Settings(amqp_url="amqp://guest:guest@127.0.0.1:9/%2F"), "resizer", 1)
    assert str(probe.check()).startswith("no broker")
    assert time.monotonic() - start < 30


@pytest.mark.parametrize("lines", [1, 4])
def test_output_closed_while_starting_or_after_stops_every_process(
    tmp_path: Path, lines: int
) -> None:
    """`… | head -n 1` closes the output while the processes are still being started (honcho
    alone then fails on a pid it does not know yet and leaves them all running); 4 lines, once
    they have. Real processes, no services: a Procfile of sleeps."""
    procfile = tmp_path / "Procfile"
    procfile.write_text("one: sleep 300\ntwo: sleep 300\nthree: sleep 300\n")
    marker = f"run-local-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "JOBSUITE_NAMESPACE": marker, "PYTHONPATH": str(ROOT)}
    command = f"{sys.executable} -m shared.run_local -f {procfile} | head -n {lines}"
    shell = subprocess.Popen(
        ["bash", "-c", command], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    left: dict[int, str] = {}
    try:
        out, _ = shell.communicate(timeout=30)
        assert len(out.splitlines()) == lines
        for _ in range(50):  # a moment for the last ones to be reaped
            left = processes_of(marker)
            if not left:
                break
            time.sleep(0.1)
    finally:
        for pid in processes_of(marker):  # only what this test started
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shell.kill()
        shell.wait()
    assert left == {}


def test_ctrl_c_says_each_process_stopped_not_a_signal_return_code(tmp_path: Path) -> None:
    """What a person reads after Ctrl-C: "<name> stopped" for each process, where honcho says
    "stopped (rc=-15)", which reads like a failure. Real processes: a Procfile of sleeps."""
    procfile = tmp_path / "Procfile"
    procfile.write_text("one: sleep 300\ntwo: sleep 300\n")
    marker = f"run-local-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "JOBSUITE_NAMESPACE": marker, "PYTHONPATH": str(ROOT)}
    suite = subprocess.Popen(
        [sys.executable, "-m", "shared.run_local", "-f", str(procfile)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert suite.stdout is not None
        started = 0
        while started < 2:
            started += "started (pid=" in suite.stdout.readline()
        suite.send_signal(signal.SIGINT)
        out, _ = suite.communicate(timeout=30)
    finally:
        for pid in processes_of(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        suite.kill()
        suite.wait()
    assert "rc=-15" not in out
    assert "one.1 stopped\n" in out and "two.1 stopped\n" in out
