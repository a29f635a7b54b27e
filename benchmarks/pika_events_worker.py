"""The runner's messages through plain pika, and nothing else: prefetch 1, and for each
message the two events a job makes (`job.started`, `job.succeeded`: persistent, mandatory,
the runner's properties and an event's size) on a confirm channel to the events exchange,
one wait for both confirms, then the ack. What a job costs under the runner's guarantees
with none of the runner's own work (decode and checks, the manifest, the log line, the
threads). With BENCH_EVENTS_PER_JOB=1, `job.succeeded` alone: what a job would cost if the
contract let one message say both (it does not: every step is its own event).

JOBSUITE_NAMESPACE=… [BENCH_EVENTS_PER_JOB=1] python -m benchmarks.pika_events_worker
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pika

from shared.amqp import pika_private
from shared.topology import Names

# About the size of a no-op job's events as the runner sends them.
_EVENT = b'{"event": "job.succeeded", "job_id": "' + b"0" * 36 + b'", "detail": "' + b"x" * 300
_EVENT += b'"}'


def main() -> None:
    names = Names(os.environ["JOBSUITE_NAMESPACE"])
    events = ("job.started", "job.succeeded")[-int(os.environ.get("BENCH_EVENTS_PER_JOB", "2")) :]
    connection = pika.BlockingConnection(pika.URLParameters(os.environ["AMQP_URL"]))
    consumer = connection.channel()
    publisher = connection.channel()
    impl = pika_private.channel_impl(publisher)
    unconfirmed: set[int] = set()
    selected: list[bool] = []

    def on_confirm(frame: Any) -> None:
        tag, multiple = frame.method.delivery_tag, frame.method.multiple
        unconfirmed.difference_update([t for t in unconfirmed if t <= tag] if multiple else [tag])

    impl.confirm_delivery(ack_nack_callback=on_confirm, callback=lambda _f: selected.append(True))
    pika_private.flush_until(publisher, lambda: bool(selected))
    consumer.basic_qos(prefetch_count=1)
    sent = 0

    def on_message(ch: Any, method: Any, _props: Any, _body: bytes) -> None:
        nonlocal sent
        for event in events:
            props = pika.BasicProperties(
                content_type="application/json",
                delivery_mode=pika.DeliveryMode.Persistent,
                message_id=f"{sent:036d}",
                type=event,
                app_id="bench",
                timestamp=int(time.time()),
            )
            impl.basic_publish(names.events_exchange, "", _EVENT, props, mandatory=True)
            sent += 1
            unconfirmed.add(sent)
        pika_private.flush_until(publisher, lambda: not unconfirmed)
        ch.basic_ack(method.delivery_tag)

    consumer.basic_consume(names.task_queue("resize"), on_message)
    signal.signal(signal.SIGTERM, lambda *_: consumer.stop_consuming())
    consumer.start_consuming()
    connection.close()


if __name__ == "__main__":
    main()
