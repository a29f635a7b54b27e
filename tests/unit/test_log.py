from __future__ import annotations

import io
import json
import logging
import threading

import pytest

import shared.log as shared_log
from shared.log import bind_job, configure_logging, get_logger, job_context

pytestmark = pytest.mark.usefixtures("restore_logging")


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_every_line_logged_during_a_job_carries_its_context(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("resizer", "info", "json")
    log = get_logger("test")
    context = job_context("resizer", "job-1", "resize", 2)
    context.run(log.info, "inside_the_job", extra_field=1)
    context.run(logging.getLogger("pika.adapters").warning, "stdlib %s", "line")
    log.info("between_jobs")

    inside, stdlib, between = lines(capsys)
    assert inside["event"] == "inside_the_job"
    for line in (inside, stdlib):
        assert (line["job_id"], line["type"], line["attempt"]) == ("job-1", "resize", 2)
        assert line["service"] == "resizer"
        assert line["timestamp"].endswith("Z")
    assert stdlib["event"] == "stdlib line" and stdlib["level"] == "warning"
    assert "job_id" not in between and between["service"] == "resizer"


def test_job_context_does_not_leak_between_threads(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("resizer", "info", "json")
    log = get_logger("test")
    bind_job("resizer", "job-main", "resize", 1)

    def other() -> None:
        bind_job("resizer", "job-other", "resize", 1)
        log.info("other_thread")

    t = threading.Thread(target=other)
    t.start()
    t.join()
    log.info("main_thread")
    by_event = {line["event"]: line for line in lines(capsys)}
    assert by_event["other_thread"]["job_id"] == "job-other"
    assert by_event["main_thread"]["job_id"] == "job-main"


def test_exceptions_become_structured_tracebacks(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("resizer", "info", "json")
    try:
        raise ValueError("boom")
    except ValueError:
        get_logger("test").exception("handler_crashed")
    (line,) = lines(capsys)
    assert line["exception"][0]["exc_type"] == "ValueError"


@pytest.mark.parametrize("broken", ["closed", "broken pipe"])
def test_a_line_that_cannot_be_written_is_lost_without_failing_its_caller(
    broken: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_logging("resizer", "info", "json")
    stream: io.StringIO = io.StringIO()
    if broken == "closed":
        stream.close()
    else:

        def pipe_gone(_text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        monkeypatch.setattr(stream, "write", pipe_gone)
    monkeypatch.setattr(shared_log._Stdout, "stream", stream)
    get_logger("test").info("nobody_reads_this")  # no exception
    get_logger("test").error("nor_this", job_id="j")
