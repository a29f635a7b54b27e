"""What the CLI prints for people: help that shows a value placeholder only where an option
takes a value, tables readable at 80 columns, counts in the right number."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner, Result

from cli import audit_cmds, common, dlq_cmds
from cli.app import app
from cli.tables import Row, print_listing
from services.audit.recorder import Recorder
from shared.config import Settings
from shared.words import count
from tests.support.audit import make_event, new_job_id
from tests.support.keys import make_key


def jobsuite(*args: str, columns: int = 200) -> Result:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": str(columns), "NO_COLOR": "1"})


def option_line(help_text: str, flag: str) -> str:
    [line] = [ln for ln in help_text.splitlines() if re.match(rf"^\W*{flag}\s", ln)]
    return line


def test_flags_show_no_value_placeholder_and_options_keep_theirs() -> None:
    result = jobsuite("submit", "resize", "--help")
    assert result.exit_code == 0, result.output
    for flag in ("--wait", "--help"):
        assert "<" not in option_line(result.output, flag), result.output
    assert "<int>" in option_line(result.output, "--width")
    assert "<float>" in option_line(result.output, "--timeout")


def test_the_gateway_option_says_where_its_default_comes_from() -> None:
    result = jobsuite("submit", "resize", "--help")
    assert "GATEWAY_URL" in option_line(result.output, "--gateway"), result.output


# --- tables at 80 columns -------------------------------------------------------------------

OK_ID = "3f2c9a1e-8b7d-4c6e-9f1a-2b3c4d5e6f70"
FAILED_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
ERROR = "data.lines.0.vat_rate: Input should be a valid decimal string, not a number"
PAGE = {
    "jobs": [
        {
            "id": OK_ID,
            "type": "resize",
            "status": "succeeded",
            "attempts": 1,
            "submitted_at": "2026-12-01T06:54:06+00:00",
            "duration_ms": 1234.5,
        },
        {
            "id": FAILED_ID,
            "type": "render",
            "status": "failed",
            "attempts": 3,
            "submitted_at": "2025-01-31T23:59:59+00:00",
            "duration_ms": 98765.0,
            "error": {"kind": "invalid_input", "message": ERROR},
        },
    ]
}


@pytest.fixture
def at_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common.console, "_width", 80)


def readable_at_80(output: str) -> list[str]:
    lines = output.splitlines()
    assert lines and all(len(line.rstrip()) <= 80 for line in lines), output
    assert "…" not in output, output
    return lines


def test_the_job_list_at_80_columns_keeps_ids_and_words_whole(
    at_80_columns: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_cmds, "audit_get", lambda *_a, **_k: PAGE)
    result = jobsuite("jobs", columns=80)
    assert result.exit_code == 0, result.output
    lines = readable_at_80(result.output)
    assert lines[0].split() == ["job", "type", "status", "try", "submitted", "took"]
    [ok] = [line for line in lines if OK_ID in line]
    assert ok.split()[1:3] == ["resize", "succeeded"] and ok.endswith("1.2 s")
    [failed] = [line for line in lines if FAILED_ID in line]
    assert failed.split()[1:5] == ["render", "failed", "3", "2025-01-31"]
    # The error under its job, its words whole: wrapped, it reads the same joined again.
    under = lines[lines.index(failed) + 1 :]
    assert " ".join(" ".join(under).split()) == f"invalid_input: {ERROR}"


def test_the_key_list_at_80_columns_keeps_names_whole(at_80_columns: None, tmp_path: Path) -> None:
    make_key(tmp_path, "nightly-reports-of-the-shop", mails_per_hour=1)
    result = CliRunner().invoke(app, ["keys", "list"], env={"STATE_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    lines = readable_at_80(result.output)
    [row] = [line for line in lines if "nightly-reports-of-the-shop" in line]
    assert row.split()[1:3] == ["client", "active"]
    note = lines[lines.index(row) + 1].strip()
    assert note.startswith("limits: 20 recipients a mail, 1 mail an hour,"), note


def test_the_dead_letter_list_at_80_columns_puts_queue_and_error_under_the_job(
    at_80_columns: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = {
        "job_id": FAILED_ID,
        "type": "render",
        "reason": "delivery_limit",
        "queue": "jobs.render",
        "attempt": 3,
        "deaths": 2,
        "died_at": "2025-01-31T23:59:59+00:00",
        "error": {"kind": "invalid_input", "message": ERROR},
    }
    held = SimpleNamespace(dead=SimpleNamespace(type="render", job_id=FAILED_ID))

    @contextmanager
    def dead_letters(_s: object) -> Iterator[SimpleNamespace]:
        yield SimpleNamespace(held=[held])

    monkeypatch.setattr(dlq_cmds, "_dead_letters", dead_letters)
    monkeypatch.setattr(dlq_cmds, "_audit_errors", lambda *_a: {})
    monkeypatch.setattr(dlq_cmds, "_summary", lambda *_a: summary)
    result = jobsuite("dlq", "list", columns=80)
    assert result.exit_code == 0, result.output
    lines = readable_at_80(result.output)
    [row] = [line for line in lines if FAILED_ID in line]
    assert row.split()[1:] == ["render", "delivery_limit", "x2", "3", "2025-01-31"]
    under = " ".join(" ".join(lines[lines.index(row) + 1 :]).split())
    assert under.startswith(f"from jobs.render; invalid_input: {ERROR}"), under
    assert under.endswith("1 dead letter"), under


def test_a_listing_wider_than_the_terminal_is_never_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common.console, "_width", 40)
    with common.console.capture() as captured:
        print_listing(common.console, ("job", "type"), [Row([OK_ID, "resize"], "why " * 20)])
    lines = captured.get().splitlines()
    assert f"{OK_ID}  resize" in lines
    assert all(len(line.rstrip()) <= 40 for line in lines[3:]) and len(lines) > 4


# --- counts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "words"),
    [(0, "0 dead letters"), (1, "1 dead letter"), (2, "2 dead letters")],
)
def test_counts_take_the_right_number(n: int, words: str) -> None:
    assert count(n, "dead letter") == words
    assert count(1, "entry", "entries") == "1 entry" and count(3, "entry", "entries") == "3 entries"


def test_verify_says_one_segment_not_segments(tmp_path: Path) -> None:
    recorder = Recorder.open(Settings(audit_dir=tmp_path / "audit"))
    recorder.record([("events", make_event("job.started", new_job_id()))])
    recorder.close()
    env = {"AUDIT_DIR": str(tmp_path / "audit"), "STATE_DIR": str(tmp_path / "state")}
    result = CliRunner().invoke(app, ["audit", "verify"], env=env)
    assert result.exit_code == 0, result.output
    assert "audit log intact: 1 record in 1 segment, seq 1..1" in result.output


def _commands(group: object) -> Iterator[tuple[str, Any]]:
    """Every command under `group`, by its full name (typer may carry its own click, so the
    groups are told by their `commands`)."""

    command = typer.main.get_command(group) if isinstance(group, typer.Typer) else group
    for name, sub in getattr(command, "commands", {}).items():
        yield name, sub
        yield from ((f"{name} {n}", c) for n, c in _commands(sub))


def test_each_command_summary_in_a_listing_is_one_sentence_on_one_line() -> None:
    """The command lists show a docstring's first paragraph: hard line breaks in it show up
    as a summary broken mid-sentence at 80 columns."""
    commands = dict(_commands(app))
    assert {"status", "audit verify", "keys local"} <= commands.keys()
    broken = [
        name for name, c in commands.items() if "\n" in (c.help or "").strip().split("\n\n")[0]
    ]
    assert broken == []
