"""What the CLI prints for people: help that shows a value placeholder only where an option
takes a value, tables readable at 80 columns, counts in the right number."""

from __future__ import annotations

import re

from typer.testing import CliRunner, Result

from cli.app import app


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
