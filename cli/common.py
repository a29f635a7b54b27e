"""What every command needs: the settings, and errors shown as one readable line."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from shared.config import Settings, settings_or_exit
from shared.errors import ConfigError, JobsuiteError
from shared.exit_codes import EXIT_CONFIG

P = ParamSpec("P")
R = TypeVar("R")

console = Console()
err_console = Console(stderr=True)


def settings() -> Settings:
    return settings_or_exit()


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one line to stderr; `raise fail(...)` ends the command with `code`."""
    err_console.print(f"[bold red]jobsuite:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def one_line_errors() -> Iterator[None]:
    try:
        yield
    except ConfigError as e:  # as a service says it, and with its exit code
        raise fail(f"configuration error: {e}", EXIT_CONFIG) from None
    except JobsuiteError as e:
        raise fail(str(e)) from None


def readable_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorate a command so our errors end it with one line instead of a traceback."""

    @wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with one_line_errors():
            return fn(*args, **kwargs)

    return run
