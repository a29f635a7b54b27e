"""pika's own log lines while a connection is being opened: dropped.

A failed connect makes pika log the same failure six times over, once per layer, the last
with a traceback ("Error in _create_connection()"): some 40 lines per attempt. jobsuite says
it once instead, in one line naming the cause (`connect_errors.py`). Only the thread that is
connecting is quieted, and only while it connects: pika's lines about a live connection,
and every pika line under LOG_LEVEL=debug, still come through.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_state = threading.local()


# pika looks a host name up on a thread of its own (its address resolver's `_resolve`),
# which runs only while some thread connects; its failure is the connect's failure.
_RESOLVER = "_resolve"


class _WhileConnecting(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            return True
        return not getattr(_state, "connecting", 0) and record.funcName != _RESOLVER


_FILTER = _WhileConnecting()


def _install() -> None:
    # A logger's filters see only the records made on that logger, not its children's: the
    # filter goes on every pika logger (pika makes one per module, at import).
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        ours = name == "pika" or name.startswith("pika.")
        if ours and isinstance(logger, logging.Logger) and _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


@contextmanager
def quiet_while_connecting() -> Iterator[None]:
    """Drop pika's log records made by this thread inside the block (blocks may overlap: on
    an event loop, several connects at once)."""
    _install()
    _state.connecting = getattr(_state, "connecting", 0) + 1
    try:
        yield
    finally:
        _state.connecting -= 1
