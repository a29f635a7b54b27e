"""pika_private.name_callbacks_quickly: pika's callback names, the same for every kind of value
pika gives its CallbackManager, and its dispatch unchanged."""

from __future__ import annotations

from typing import Any

import pika.callback
import pytest
from pika import frame, spec

from shared.amqp.pika_private import name_callbacks_quickly

pika_name_or_value = pika.callback.name_or_value  # as imported, before any patch


class Text(str):
    pass


@pytest.mark.parametrize(
    "value",
    [
        0,
        1,
        65535,
        -1,
        True,  # a bool is an int to issubclass but not to type(): pika's own way
        "1",
        "",
        "Basic.Ack",
        Text("sub"),
        spec.Basic.Ack,
        spec.Basic.Deliver,
        spec.Basic.Ack(delivery_tag=7),
        frame.Method(3, spec.Basic.Nack(delivery_tag=2)),
        b"bytes",
        3.5,
        None,
    ],
)
def test_every_value_is_named_as_pika_names_it(value: Any) -> None:
    name_callbacks_quickly()
    assert pika.callback.name_or_value is not pika_name_or_value
    assert pika.callback.name_or_value(value) == pika_name_or_value(value)


def test_applied_twice_it_wraps_pikas_own_once() -> None:
    name_callbacks_quickly()
    first = pika.callback.name_or_value
    name_callbacks_quickly()
    assert pika.callback.name_or_value is first


def test_callbacks_are_found_and_called_by_channel_number_and_method() -> None:
    name_callbacks_quickly()
    manager = pika.callback.CallbackManager()
    calls: list[Any] = []
    manager.add(2, spec.Basic.Ack, calls.append, one_shot=False)
    acked = frame.Method(2, spec.Basic.Ack(delivery_tag=5))
    assert manager.pending(2, acked.method) == 1
    assert manager.pending(3, acked.method) is None  # another channel
    assert manager.pending(2, spec.Basic.Deliver()) is None
    assert manager.process(2, acked.method, None, acked) is True
    assert manager.process(3, acked.method, None, acked) is False
    assert calls == [acked]
    assert manager.remove(2, spec.Basic.Ack, calls.append) is True
    assert manager.pending(2, acked.method) is None
