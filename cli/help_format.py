"""One fix to Typer's rich help, applied once when the CLI is imported (cli/app.py).

Typer 0.29 prints a type beside every option, flags too: `--wait <bool>`, `--help <bool>`,
although a flag takes no value. Here a flag shows no type; an option that takes a value
keeps its `<int>`, `<str>`…
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperOption

# A Typer without this method (older or newer) formats help its own way: leave it alone.
_value_type = getattr(TyperOption, "display_type_rich", None)


def _type_unless_flag(self: TyperOption, ctx: Any) -> str | None:
    assert _value_type is not None
    return None if self.is_flag else _value_type(self, ctx)


if _value_type is not None:
    TyperOption.display_type_rich = _type_unless_flag  # type: ignore[method-assign]
