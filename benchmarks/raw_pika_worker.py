"""The anchor for runner overhead: plain pika, prefetch 1, manual ack, a no-op per message.

JOBSUITE_NAMESPACE=… python -m benchmarks.raw_pika_worker
"""

from __future__ import annotations

import os
import signal
from typing import Any

import pika

from shared.topology import Names


def main() -> None:
    queue = Names(os.environ["JOBSUITE_NAMESPACE"]).task_queue("resize")
    connection = pika.BlockingConnection(pika.URLParameters(os.environ["AMQP_URL"]))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=1)

    def on_message(ch: Any, method: Any, _props: Any, _body: bytes) -> None:
        ch.basic_ack(method.delivery_tag)

    channel.basic_consume(queue, on_message)
    signal.signal(signal.SIGTERM, lambda *_: channel.stop_consuming())
    channel.start_consuming()
    connection.close()


if __name__ == "__main__":
    main()
