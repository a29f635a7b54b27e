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


def _reference_line(event: str, method: str = "info", **fields: object) -> str:
    """The line structlog's own processors (`_SHARED_PROCESSORS`, the exception and JSON
    renderers) make of the same call."""
    from structlog.processors import ExceptionRenderer, JSONRenderer
    from structlog.tracebacks import ExceptionDictTransformer

    chain = [
        *shared_log._SHARED_PROCESSORS,
        ExceptionRenderer(ExceptionDictTransformer(show_locals=False)),
        JSONRenderer(),
    ]
    logger = shared_log._Stdout("test")
    event_dict: object = {**fields, "event": event}
    for processor in chain:
        event_dict = processor(logger, method, event_dict)
    assert isinstance(event_dict, str)
    return event_dict


def _unstamped(line: str) -> str:
    stamp = json.loads(line)["timestamp"]
    assert stamp.endswith("Z") and stamp[:4].isdigit()
    return line.replace(stamp, "<timestamp>")


def test_a_json_line_is_what_structlogs_own_processors_make_of_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("resizer", "info", "json")
    log = get_logger("test")
    context = job_context("resizer", "job-1", "resize", 2, "ab" * 16)
    fields = {"outcome": "succeeded", "duration_ms": 2.5, "odd": {1, 2}.__class__}
    context.run(log.warning, "job_finished", **fields)
    try:
        raise ValueError("boom")
    except ValueError:
        context.run(log.exception, "handler_crashed")
        expected_error = context.run(_reference_line, "handler_crashed", "exception", exc_info=True)
    expected = context.run(_reference_line, "job_finished", "warning", **fields)

    ours, error = capsys.readouterr().out.splitlines()
    assert _unstamped(ours) == _unstamped(expected)
    assert _unstamped(error) == _unstamped(expected_error)
    assert json.loads(error)["exception"][0]["exc_value"] == "boom"


def test_stack_info_shows_the_callers_frame_not_the_loggers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("resizer", "info", "json")
    get_logger("test").info("look_here", stack_info=True)
    (line,) = lines(capsys)
    assert "stack_info" not in line
    last_frame = line["stack"].strip().splitlines()[-2]
    assert "test_stack_info_shows_the_callers_frame_not_the_loggers" in last_frame
