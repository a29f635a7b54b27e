"""A message's frames as `publish_frames` encodes them are the bytes pika's own encoding
makes of the same message."""

from __future__ import annotations

import pika
import pika.exceptions as pe
import pytest
from pika import frame, spec

from shared.amqp.publish_frames import Message, publish_frames

BODY_MAX = 131072 - 8


def pikas_frames(
    channel: int, exchange: str, routing_key: str, body: bytes, message: Message, mandatory: bool
) -> bytes:
    props = pika.BasicProperties(
        content_type=message.content_type,
        delivery_mode=message.delivery_mode,
        message_id=message.message_id,
        type=message.message_type,
        app_id=message.app_id,
        user_id=message.user_id,
        timestamp=message.timestamp,
        headers=message.headers,
    )
    publish = spec.Basic.Publish(exchange=exchange, routing_key=routing_key, mandatory=mandatory)
    frames = [frame.Method(channel, publish).marshal()]
    frames.append(frame.Header(channel, len(body), props).marshal())
    for start in range(0, len(body), BODY_MAX):
        frames.append(frame.Body(channel, body[start : start + BODY_MAX]).marshal())
    return b"".join(frames)


def message(**changes: object) -> Message:
    fields: dict[str, object] = {
        "content_type": "application/json",
        "delivery_mode": 2,
        "message_id": "8f0c2b1e-1f7b-4c1a-9a57-0d4bb1f5f0a1",
        "message_type": "job.succeeded",
        "app_id": "jobs.resize:host-1",
        "timestamp": 1_765_000_000,
        "user_id": "guest",
        "headers": None,
    }
    fields.update(changes)
    return Message(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exchange", "routing_key", "body", "msg", "mandatory"),
    [
        ("ns.events", "", b'{"event": "job.started"}', message(), True),
        ("ns.jobs", "resize", b"{}", message(user_id=None), False),
        ("", "ns.jobs.resize", b"", message(), True),
        (
            "ns.retry",
            "render",
            b"x" * 300,
            message(headers={"x-retry-delay": "1000", "n": 3, "nested": {"a": [1, "b"]}}),
            True,
        ),
        ("ns.jobs", "mail", b"\x00\xff" * 200_000, message(message_id="ü-é-日本"), True),
    ],
)
def test_the_frames_are_pikas_bytes(
    exchange: str, routing_key: str, body: bytes, msg: Message, mandatory: bool
) -> None:
    ours = publish_frames(
        7, exchange, routing_key, body, msg, mandatory=mandatory, body_max=BODY_MAX
    )
    assert b"".join(ours) == pikas_frames(7, exchange, routing_key, body, msg, mandatory)
    assert len(ours) == 2 + -(-len(body) // BODY_MAX)  # method, header, the body's frames


def test_a_short_string_over_255_bytes_is_refused_as_pika_refuses_it() -> None:
    with pytest.raises(pe.ShortStringTooLong):
        publish_frames(
            1, "ex", "", b"{}", message(message_id="x" * 256), mandatory=True, body_max=BODY_MAX
        )
    with pytest.raises(pe.ShortStringTooLong):
        publish_frames(1, "e" * 256, "", b"{}", message(), mandatory=True, body_max=BODY_MAX)
