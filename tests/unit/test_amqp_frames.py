"""`send_frames_together`: a message's frames reach pika's transport as one write, with
pika's byte and frame counts (its heartbeat check reads them) kept as they were, and what
the transport has buffered goes out in one `send` (up to a bound), with its byte count kept."""

from __future__ import annotations

from collections import deque

from pika.adapters.utils.io_services_utils import _AsyncTransportBase
from pika.connection import Connection as PikaConnection

from shared.amqp import send_frames_together
from shared.amqp.pika_private import coalesce


class Recorder:
    def __init__(self) -> None:
        self.bytes_sent = 0
        self.frames_sent = 0
        self.writes: list[bytes] = []

    def _adapter_emit_data(self, data: bytes) -> None:
        self.writes.append(data)


def test_a_messages_frames_go_to_the_transport_in_one_write() -> None:
    send_frames_together()
    send_frames_together()  # twice is harmless
    recorder = Recorder()

    PikaConnection._output_marshaled_frames(recorder, [b"method", b"header", b"body"])  # type: ignore[arg-type]

    assert recorder.writes == [b"methodheaderbody"]
    assert (recorder.bytes_sent, recorder.frames_sent) == (16, 3)


class Socket:
    def __init__(self, takes: int = 1 << 30) -> None:
        self.takes = takes  # bytes each send accepts
        self.sends: list[bytes] = []

    def send(self, data: bytes) -> int:
        self.sends.append(bytes(data[: self.takes]))
        return min(len(data), self.takes)


class Transport:
    """What pika's transport keeps for sending, with a socket that records each send."""

    _sigint_safe_send = staticmethod(lambda sock, data: sock.send(data))

    def __init__(self, chunks: list[bytes], sock: Socket) -> None:
        self._tx_buffers = deque(chunks)
        self._tx_buffered_byte_count = sum(len(c) for c in chunks)
        self._sock = sock


def test_what_the_transport_buffered_goes_out_in_one_send() -> None:
    send_frames_together()
    sock = Socket()
    transport = Transport([b"job-1", b"job-2", b"event"], sock)

    _AsyncTransportBase._produce(transport)  # type: ignore[arg-type]

    assert sock.sends == [b"job-1job-2event"]
    assert (list(transport._tx_buffers), transport._tx_buffered_byte_count) == ([], 0)


def test_a_partial_send_keeps_the_rest_in_order() -> None:
    send_frames_together()
    sock = Socket(takes=4)
    transport = Transport([b"abc", b"def", b"gh"], sock)

    _AsyncTransportBase._produce(transport)  # type: ignore[arg-type]

    assert b"".join(sock.sends) == b"abcdefgh"
    assert transport._tx_buffered_byte_count == 0


def test_coalescing_stops_at_its_bound_and_leaves_a_large_chunk_alone() -> None:
    chunks = deque([b"a" * 4, b"b" * 4, b"c" * 4])
    coalesce(chunks, limit=8)
    assert list(chunks) == [b"aaaabbbb", b"cccc"]

    large = deque([b"x" * 10, b"y"])
    coalesce(large, limit=8)
    assert list(large) == [b"x" * 10, b"y"]
