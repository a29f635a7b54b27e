"""Every use of pika's private members, in one place, so a pika upgrade touches one file.

pika's BlockingConnection has no public way to track publisher confirms without waiting for
each one, to end a connection without a closing handshake, or to reach the I/O loop's
timers; its own asynchronous adapter underneath (`_impl`) has all three. And pika sends a
message's frames with one `send` each, and each message buffered meanwhile with one more,
which `send_frames_together` makes one `send` for the lot. What is used here
has been stable through pika 1.x (checked against 1.3 and 1.4.4); the tests that exercise
it (tests/unit/test_amqp_silence.py, the worker and gateway tests against the real broker,
the network-fault and alarm tests) fail first if it moves.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.adapters.utils.io_services_utils import _AsyncTransportBase
from pika.connection import Connection as PikaConnection

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
