"""Every use of pika's private members, in one place, so a pika upgrade touches one file.

pika's BlockingConnection has no public way to track publisher confirms without waiting for
each one, to end a connection without a closing handshake, or to reach the I/O loop's
timers; its own asynchronous adapter underneath (`_impl`) has all three. And pika sends a
message's frames with one `send` each, and each message buffered meanwhile with one more,
which `send_frames_together` makes one `send` for the lot; and it sends nothing until its
I/O loop has polled the socket as writable, which `send_eagerly` skips for a connection
whose messages go out one at a time. What is used here
has been stable through pika 1.x (checked against 1.3 and 1.4.4); the tests that exercise
it (tests/unit/test_amqp_silence.py, the worker and gateway tests against the real broker,
the network-fault and alarm tests) fail first if it moves.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import pika.callback
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.adapters.utils.io_services_utils import _AsyncPlaintextTransport, _AsyncTransportBase
from pika.connection import Connection as PikaConnection

from shared.amqp.publish_frames import Message, publish_frames

# At most this much buffered output goes out in one `send` (a partial send re-queues the
# rest as a copy: bounded, that stays cheap).
SEND_MAX_BYTES = 256 * 1024


def connection_impl(raw: BlockingConnection) -> Any:
    """The SelectConnection under a BlockingConnection (its I/O loop, callbacks, counters)."""
    return raw._impl


def channel_impl(raw: BlockingChannel) -> Any:
    """pika's own Channel under a BlockingChannel: publishing on it does not wait."""
    return raw._impl


def flush_until(raw: BlockingChannel, done: Callable[[], bool]) -> None:
    """Run the connection's I/O loop until `done()` (raises the connection's error if it
    dies meanwhile): how BlockingChannel itself waits for a confirm."""
    raw._flush_output(done)


def publish_encoded(
    impl: Any, exchange: str, routing_key: str, body: bytes, message: Message
) -> None:
    """`basic_publish` (mandatory) on pika's own channel `impl` (`channel_impl`, or an
    asynchronous connection's), its frames encoded by `publish_frames` instead of pika's
    objects, then handed to the connection as pika's own publish hands them (a channel not
    open is pika's ChannelWrongStateError, as before)."""
    impl._raise_if_not_open()
    connection = impl.connection
    frames = publish_frames(
        impl.channel_number,
        exchange,
        routing_key,
        body,
        message,
        mandatory=True,
        body_max=connection._body_max_length,
    )
    connection._output_marshaled_frames(frames)


def terminate_stream(impl: Any, error: Exception) -> None:
    """End the connection at once, without a closing handshake (nothing would answer it);
    pika then raises `error` to whoever waits on the connection."""
    impl._terminate_stream(error)


def send_frames_together() -> None:
    """Hand a message's frames (method, header, body) to the transport as one write, and
    send what the transport has buffered (the messages published since the I/O loop last
    ran: a worker's events, a gateway batch's jobs) in one `send`, up to SEND_MAX_BYTES:
    pika sends each frame with a `send` of its own. Process-wide; the bytes on the wire are
    the same."""
    if not getattr(_AsyncTransportBase._produce, "_jobsuite_joined", False):
        produce = _AsyncTransportBase._produce

        def produce_together(self: Any) -> None:
            coalesce(self._tx_buffers)
            produce(self)

        produce_together._jobsuite_joined = True  # type: ignore[attr-defined]
        _AsyncTransportBase._produce = produce_together  # type: ignore[method-assign]
    if getattr(PikaConnection._output_marshaled_frames, "_jobsuite_joined", False):
        return

    def output(self: Any, marshaled_frames: Sequence[bytes]) -> None:
        if not marshaled_frames:
            return
        self.bytes_sent += sum(len(f) for f in marshaled_frames)
        self.frames_sent += len(marshaled_frames)
        self._adapter_emit_data(b"".join(marshaled_frames))

    output._jobsuite_joined = True  # type: ignore[attr-defined]
    PikaConnection._output_marshaled_frames = output  # type: ignore[method-assign]


def name_callbacks_quickly() -> None:
    """pika's CallbackManager names a frame's channel number (an int) by first trying
    `issubclass` on it and catching the TypeError, twice to four times per frame it reads
    (a delivery, each confirm): for an int or a str this gives its answer, `str(value)`,
    straight away, a fifth of the time. Process-wide; every other value goes pika's way."""
    if getattr(pika.callback.name_or_value, "_jobsuite_quick", False):
        return
    slow = pika.callback.name_or_value

    def name_or_value(value: Any) -> str:
        kind = type(value)
        if kind is int or kind is str:
            return str(value)
        return slow(value)

    name_or_value._jobsuite_quick = True  # type: ignore[attr-defined]
    pika.callback.name_or_value = name_or_value


def patch_process() -> None:
    """pika's process-wide patches, each applied once: a message's frames in one send
    (`send_frames_together`), channel numbers named without an exception
    (`name_callbacks_quickly`). Every connection of the process takes them before it opens."""
    send_frames_together()
    name_callbacks_quickly()


def coalesce(chunks: deque[bytes], limit: int = SEND_MAX_BYTES) -> None:
    """Join the leading chunks into one of at most `limit` bytes (a larger first chunk
    stays as it is)."""
    if len(chunks) < 2:
        return
    taken = [chunks.popleft()]
    size = len(taken[0])
    while chunks and size + len(chunks[0]) <= limit:
        size += len(chunks[0])
        taken.append(chunks.popleft())
    chunks.appendleft(b"".join(taken) if len(taken) > 1 else taken[0])


def send_eagerly(raw: BlockingConnection) -> bool:
    """From now on this connection sends what it writes at once, in the write, when nothing
    of it waits to go out, instead of after a turn of its I/O loop that polls the socket as
    writable (two system calls to watch for writability and a poll fewer per write); and it
    can hold its writes (`hold_writes`) to send them together. For a connection that writes
    a message at a time (a worker's events and acks), not one gathering a batch. What the
    socket does not take at once goes pika's way (buffered, sent when writable), and so does
    every error, which pika then meets and handles as always. Plain connections only (TLS
    keeps pika's path); False when not applied."""
    transport = connection_impl(raw)._transport
    if not isinstance(transport, _AsyncPlaintextTransport):
        return False
    _patch_for_eager_sends()
    transport._jobsuite_eager = True
    transport._jobsuite_held = False
    transport._jobsuite_unwatched = False
    return True


def hold_writes(raw: BlockingConnection) -> None:
    """What this (eager) connection writes next is kept until it next waits on the broker
    (any BlockingConnection wait: a confirm, an ack's flush, the loop's next turn), then sent
    in one write with whatever followed it: a worker's `job.started` goes with the job's end
    when the job ends before the I/O thread goes back to its loop, one confirm for both."""
    transport = connection_impl(raw)._transport
    if getattr(transport, "_jobsuite_eager", False):
        transport._jobsuite_held = True


def _patch_for_eager_sends() -> None:
    if getattr(_AsyncPlaintextTransport.write, "_jobsuite_eager", False):
        return
    buffered_write = _AsyncPlaintextTransport.write
    flush_output = BlockingConnection._flush_output

    def write(self: Any, data: bytes) -> None:
        if getattr(self, "_jobsuite_eager", False) and data and self._state == self._STATE_ACTIVE:
            if self._jobsuite_held:  # buffered, unwatched: released before the next wait
                self._jobsuite_unwatched = self._jobsuite_unwatched or not self._tx_buffers
                self._buffer_tx_data(data)
                return
            if not self._tx_buffers:
                data = data[_send_now(self, data) :]
                if not data:
                    return
        buffered_write(self, data)

    def release_then_flush(self: Any, *waiters: Callable[[], bool]) -> None:
        transport = getattr(self._impl, "_transport", None)
        if getattr(transport, "_jobsuite_held", False):
            _release(transport)
        flush_output(self, *waiters)

    write._jobsuite_eager = True  # type: ignore[attr-defined]
    _AsyncPlaintextTransport.write = write  # type: ignore[method-assign]
    BlockingConnection._flush_output = release_then_flush  # type: ignore[method-assign]


def _release(transport: Any) -> None:
    """Send what was held, as one write; what the socket does not take waits for it to be
    writable, pika's way."""
    transport._jobsuite_held = False
    if not transport._jobsuite_unwatched:
        return
    transport._jobsuite_unwatched = False
    buffers: deque[bytes] = transport._tx_buffers
    if not buffers or transport._state != transport._STATE_ACTIVE:
        return
    coalesce(buffers)
    chunk = buffers[0]
    sent = _send_now(transport, chunk)
    if sent:
        buffers.popleft()
        if sent < len(chunk):
            buffers.appendleft(chunk[sent:])
        transport._tx_buffered_byte_count -= sent
    if buffers:
        transport._nbio.set_writer(transport._sock.fileno(), transport._on_socket_writable)


def _send_now(transport: Any, data: bytes) -> int:
    """How much of `data` the transport's socket took at once (0 on any error: pika's own
    send meets it again and aborts the connection as it does)."""
    try:
        return int(transport._sock.send(data))
    except OSError:  # EAGAIN (buffer full), EINTR, or a dead socket: pika's way decides
        return 0
