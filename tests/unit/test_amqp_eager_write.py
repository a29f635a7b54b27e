"""An eager transport's write when the socket takes only part of it, or fails: the rest goes
pika's way (buffered, watched for writability), in order, so nothing is lost or reordered."""

from __future__ import annotations

from collections import deque
from typing import Any

from pika.adapters.utils.io_services_utils import _AsyncPlaintextTransport

from shared.amqp.pika_private import _patch_for_eager_sends, _release


class Socket:
    def __init__(self, takes: int = 1 << 30, error: OSError | None = None) -> None:
        self.takes, self.error = takes, error
        self.sends: list[bytes] = []

    def send(self, data: bytes) -> int:
        if self.error is not None:
            raise self.error
        self.sends.append(bytes(data[: self.takes]))
        return min(len(data), self.takes)

    def fileno(self) -> int:
        return 7


class Watcher:
    def __init__(self) -> None:
        self.writers: list[int] = []

    def set_writer(self, fd: int, _on_writable: Any) -> None:
        self.writers.append(fd)


class Transport:
    """What pika's plaintext transport keeps for writing, marked eager."""

    _STATE_ACTIVE = _AsyncPlaintextTransport._STATE_ACTIVE
    _buffer_tx_data = _AsyncPlaintextTransport._buffer_tx_data
    get_write_buffer_size = _AsyncPlaintextTransport.get_write_buffer_size

    def __init__(self, sock: Socket) -> None:
        self._sock, self._nbio = sock, Watcher()
        self._state = self._STATE_ACTIVE
        self._tx_buffers: deque[bytes] = deque()
        self._tx_buffered_byte_count = 0
        self._jobsuite_eager, self._jobsuite_held, self._jobsuite_unwatched = True, False, False

    def _on_socket_writable(self) -> None:
        pass


def write(transport: Transport, data: bytes) -> None:
    _patch_for_eager_sends()
    _AsyncPlaintextTransport.write(transport, data)  # type: ignore[arg-type]


def test_what_the_socket_takes_at_once_is_not_buffered() -> None:
    transport = Transport(Socket())
    write(transport, b"event")
    assert transport._sock.sends == [b"event"]
    assert (list(transport._tx_buffers), transport._nbio.writers) == ([], [])


def test_a_partial_send_buffers_the_rest_and_watches_for_writability() -> None:
    transport = Transport(Socket(takes=2))
    write(transport, b"event")
    write(transport, b"ack")  # behind the rest: buffered, in order, not sent first
    assert transport._sock.sends == [b"ev"]
    assert list(transport._tx_buffers) == [b"ent", b"ack"]
    assert transport._tx_buffered_byte_count == 6
    assert transport._nbio.writers == [7]


def test_a_failed_send_is_left_to_pika_whole() -> None:
    transport = Transport(Socket(error=ConnectionResetError("reset")))
    write(transport, b"event")
    assert list(transport._tx_buffers) == [b"event"]  # pika's send meets the error again
    assert transport._nbio.writers == [7]


def test_held_writes_go_out_as_one_send_when_released() -> None:
    transport = Transport(Socket())
    transport._jobsuite_held = True
    write(transport, b"started")
    write(transport, b"succeeded")
    assert transport._sock.sends == [] and transport._nbio.writers == []

    _release(transport)  # type: ignore[arg-type]

    assert transport._sock.sends == [b"startedsucceeded"]
    assert (list(transport._tx_buffers), transport._tx_buffered_byte_count) == ([], 0)
    assert not transport._jobsuite_held


def test_a_release_the_socket_half_takes_watches_for_the_rest() -> None:
    transport = Transport(Socket(takes=4))
    transport._jobsuite_held = True
    write(transport, b"started")
    _release(transport)  # type: ignore[arg-type]
    assert transport._sock.sends == [b"star"]
    assert list(transport._tx_buffers) == [b"ted"]
    assert transport._tx_buffered_byte_count == 3
    assert transport._nbio.writers == [7]
