"""docs/configuration.md is generated from the settings' declarations and kept in step."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from shared.config import Settings, declared
from shared.config_docs import configuration_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_configuration_docs_match_the_declarations() -> None:
    assert DOCS.read_text() == configuration_markdown(), (
        "docs/configuration.md differs from the settings declared in shared/config.py:"
        " run `make docs` and commit the result"
    )


def test_every_setting_has_a_variable_and_a_one_line_doc() -> None:
    for f in fields(Settings):
        d = declared(f)
        assert d.env and d.env == d.env.upper(), f.name
        assert d.doc.strip() and "\n" not in d.doc and "|" not in d.doc, f.name


def test_every_variable_is_its_field_name_in_capitals_but_the_namespace() -> None:
    differ = {
        f.name: declared(f).env for f in fields(Settings) if declared(f).env != f.name.upper()
    }
    # A bare NAMESPACE would collide with other tools' variables.
    assert differ == {"namespace": "JOBSUITE_NAMESPACE"}


def test_every_variable_is_declared_once_and_documented_once() -> None:
    names = [declared(f).env for f in fields(Settings)]
    assert len(names) == len(set(names))
    docs = configuration_markdown()
    for name in names:
        assert docs.count(f"| `{name}` |") == 1, name
