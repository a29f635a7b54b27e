"""docs/configuration.md, generated from the settings' declarations in `shared.config`.

`python -m shared.config_docs` prints it (`make docs` writes it); a unit test fails when the
file and the declarations part.
"""

from __future__ import annotations

from dataclasses import Field, fields
from typing import Any

from shared.config import Settings, declared


def shown_default(f: Field[Any]) -> str:
    """A field's default as a person would write it in the environment."""
    d = declared(f)
    if d.shown is not None:
        return d.shown
    value = f.default
    if value == "":
        return "(none)"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, tuple):
        return "`" + ",".join(str(v) for v in value) + "`"
    return f"`{value}`"


def configuration_markdown() -> str:
    """docs/configuration.md: an introduction and one row per setting, in declaration order."""
    lines = [
        "<!-- Generated from shared/config.py by `make docs`; edit the declarations there. -->",
        "# Configuration",
        "",
        "Environment variables only, read once at start (`shared/config.py`); a bad value stops",
        "the service with one line such as",
        "`jobsuite: configuration error: SMTP_PORT must be an integer, got 'abc'`.",
        "",
        "Any of them may instead come from a file: `<NAME>_FILE` names it (a Docker or",
        "Kubernetes secret, say `AMQP_URL_FILE=/run/secrets/amqp_url`); its text, without the",
        "spaces and line end around it, is the value. Setting both `NAME` and `NAME_FILE` is an",
        "error.",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
    ]
    for f in fields(Settings):
        lines.append(f"| `{declared(f).env}` | {shown_default(f)} | {declared(f).doc} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(configuration_markdown(), end="")
