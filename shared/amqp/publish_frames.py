"""A message's frames (`basic.publish`, its content header, its body) encoded in one go for
the properties jobsuite sets: the same bytes pika's own encoding makes (`pika.frame`,
`pika.spec.BasicProperties.encode`), with a few calls where pika makes about fifty (a
properties object, a frame object per frame, a call per field). A worker publishes two
messages a job. A short string over 255 bytes is pika's own ShortStringTooLong, as before.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import pika.exceptions as pe
from pika import data as pika_data

_FRAME_METHOD, _FRAME_HEADER, _FRAME_BODY = 1, 2, 3
_FRAME_END = b"\xce"
_FRAME_HEAD = struct.Struct(">BHI")  # type, channel, payload size
_BASIC = 60
_PUBLISH_HEAD = struct.pack(">HHH", _BASIC, 40, 0)  # class, method, reserved ticket
_HEADER_HEAD = struct.Struct(">HHQH")  # class, weight, body size, property flags
_TIMESTAMP = struct.Struct(">Q")

# BasicProperties' flag bits, in the order their values follow the flags.
_CONTENT_TYPE = 1 << 15
_HEADERS = 1 << 13
_DELIVERY_MODE = 1 << 12
_MESSAGE_ID = 1 << 7
_TIMESTAMP_FLAG = 1 << 6
_TYPE = 1 << 5
_USER_ID = 1 << 4
_APP_ID = 1 << 3


@dataclass(frozen=True)
class Message:
    """What a published message carries (docs/design.md, Messages)."""

    content_type: str
    delivery_mode: int
    message_id: str
    message_type: str
    app_id: str
    timestamp: int
    user_id: str | None = None
    headers: dict[str, Any] | None = None


def publish_frames(
    channel: int,
    exchange: str,
    routing_key: str,
    body: bytes,
    message: Message,
    *,
    mandatory: bool,
    body_max: int,
) -> list[bytes]:
    """The marshalled frames of one message on `channel`: the method, the content header and
    the body in frames of at most `body_max` bytes (none for an empty body, as pika)."""
    method = b"".join(
        (
            _PUBLISH_HEAD,
            _short(exchange),
            _short(routing_key),
            b"\x01" if mandatory else b"\x00",
        )
    )
    frames = [_frame(_FRAME_METHOD, channel, method), _header(channel, len(body), message)]
    for start in range(0, len(body), body_max):
        frames.append(_frame(_FRAME_BODY, channel, body[start : start + body_max]))
    return frames


def _header(channel: int, size: int, message: Message) -> bytes:
    flags = _CONTENT_TYPE | _DELIVERY_MODE | _MESSAGE_ID | _TIMESTAMP_FLAG | _TYPE | _APP_ID
    values = [_short(message.content_type)]
    if message.headers is not None:
        flags |= _HEADERS
        pika_data.encode_table(values, message.headers)
    values.append(bytes((message.delivery_mode,)))
    values.append(_short(message.message_id))
    values.append(_TIMESTAMP.pack(message.timestamp))
    values.append(_short(message.message_type))
    if message.user_id is not None:
        flags |= _USER_ID
        values.append(_short(message.user_id))
    values.append(_short(message.app_id))
    payload = _HEADER_HEAD.pack(_BASIC, 0, size, flags) + b"".join(values)
    return _frame(_FRAME_HEADER, channel, payload)


def _frame(kind: int, channel: int, payload: bytes) -> bytes:
    return b"".join((_FRAME_HEAD.pack(kind, channel, len(payload)), payload, _FRAME_END))


def _short(value: str) -> bytes:
    encoded = value.encode()
    if len(encoded) > 255:
        raise pe.ShortStringTooLong(encoded)
    return bytes((len(encoded),)) + encoded
