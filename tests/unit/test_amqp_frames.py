"""`send_frames_together`: a message's frames reach pika's transport as one write, with
pika's byte and frame counts (its heartbeat check reads them) kept as they were."""

from __future__ import annotations

from pika.connection import Connection as PikaConnection

from shared.amqp import send_frames_together


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
