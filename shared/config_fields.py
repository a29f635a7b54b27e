"""How a setting is declared: a dataclass field that carries its variable, parser and doc line
(`shared/config.py` declares every setting with `setting(...)`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import Field, dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Declared:
    """What a Settings field carries besides its default."""

    env: str
    parse: Callable[[str], Any]
    doc: str
    # The default as the docs show it, when the plain value would mislead.
    shown: str | None
    # The default from_env uses instead, when it depends on where the service runs.
    default_from: Callable[[], Any] | None


def setting(
    env: str,
    default: T,
    parse: Callable[[str], T],
    doc: str,
    *,
    shown: str | None = None,
    default_from: Callable[[], T] | None = None,
    secret: bool = False,
) -> T:
    """Declare one setting: the variable `env` parsed by `parse`, else `default`; `doc` is its
    line in the docs. A `secret` is kept out of the repr (and so out of logs)."""
    declared = Declared(env, parse, doc, shown, default_from)
    return field(default=default, repr=not secret, metadata={"setting": declared})


def declared(f: Field[Any]) -> Declared:
    return f.metadata["setting"]  # type: ignore[no-any-return]
