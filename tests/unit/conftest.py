"""Fixtures for the unit tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
import structlog

if TYPE_CHECKING:
    from tests.unit.test_worker_consumer import Rig


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging replaces the root handlers: give pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.fixture
def rigs() -> Iterator[list[Rig]]:
    """The consumer rigs a test makes (tests/unit/test_worker_consumer.py's Rig): their job
    threads and I/O threads closed after it."""
    made: list[Rig] = []
    yield made
    for rig in made:
        rig.job_thread.close()
        rig.io.close()
