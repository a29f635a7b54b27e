"""The runner's messages through plain pika, and nothing else: prefetch 1, and for each
message the two events a job makes (`job.started`, `job.succeeded`: persistent, mandatory,
the runner's properties and an event's size) on a confirm channel to the events exchange,
one wait for both confirms, then the ack. What a job costs under the runner's guarantees
with none of the runner's own work (decode and checks, the manifest, the log line, the
threads). With BENCH_EVENTS_PER_JOB=1, `job.succeeded` alone: what a job would cost if the
contract let one message say both (it does not: every step is its own event); with 0, no
event at all (the ack straight after the work: what Celery's task sends).

With BENCH_WORK=resize each message is a resize job, done by the resizer's own handler on
the folder store at BLOB_DIR (benchmarks/resize_task.py, as Celery's and Dramatiq's tasks do)
between `job.started` and `job.succeeded`, as the runner orders them: the floor of any runner
on this protocol with the same work.

JOBSUITE_NAMESPACE=… [BENCH_EVENTS_PER_JOB=0|1] [BENCH_WORK=resize] \
    python -m benchmarks.pika_events_worker
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pika

from shared.amqp import pika_private
from shared.topology import Names

_EVENTS = ("job.started", "job.succeeded")


def event_body(event: str) -> bytes:
    """About the size of a no-op job's events as the runner sends them."""
    detail = "x" * 300
    return f'{{"event": "{event}", "job_id": "{"0" * 36}", "detail": "{detail}"}}'.encode()


def work_of(name: str) -> Callable[[bytes], object]:
    """What each message's job does: nothing, or (`resize`) the resizer's handler."""
    if name == "resize":
        from benchmarks.resize_task import resize_message

        return lambda body: resize_message(body.decode())
    if name:
        raise SystemExit(f"BENCH_WORK={name!r}: only resize, or nothing for a no-op")
    return lambda _body: None


def main() -> None:
    names = Names(os.environ["JOBSUITE_NAMESPACE"])
    count = os.environ.get("BENCH_EVENTS_PER_JOB", "2")
    if count not in ("0", "1", "2"):
        raise SystemExit(f"BENCH_EVENTS_PER_JOB={count!r}: 0, 1 or 2 events per job")
    events = _EVENTS[len(_EVENTS) - int(count) :]  # the last `count`: none for 0
    work = work_of(os.environ.get("BENCH_WORK", ""))
    bodies = {event: event_body(event) for event in events}
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

    def publish(event: str) -> None:
        nonlocal sent
        props = pika.BasicProperties(
            content_type="application/json",
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=f"{sent:036d}",
            type=event,
            app_id="bench",
            timestamp=int(time.time()),
        )
        impl.basic_publish(names.events_exchange, "", bodies[event], props, mandatory=True)
        sent += 1
        unconfirmed.add(sent)

    def on_message(ch: Any, method: Any, _props: Any, body: bytes) -> None:
        # `job.started` before the work, as the runner makes it; pika sends it with the
        # rest when it next runs its loop (the wait), as the runner holds it for a short job.
        for event in events[:-1]:
            publish(event)
        work(body)
        for event in events[-1:]:
            publish(event)
        pika_private.flush_until(publisher, lambda: not unconfirmed)
        ch.basic_ack(method.delivery_tag)

    consumer.basic_consume(names.task_queue("resize"), on_message)
    signal.signal(signal.SIGTERM, lambda *_: consumer.stop_consuming())
    consumer.start_consuming()
    connection.close()


if __name__ == "__main__":
    main()
