"""A deliberately wrong consumer: it does each job inside `on_message`, on the connection's own
thread, the mistake the worker runner exists to avoid (docs/design.md, delivery guarantee 2).

While the job runs nothing pumps the connection, so no heartbeat goes out; with a job longer
than the heartbeat timeout the broker closes the connection and takes the job back. Raw pika
on purpose, like a user's first script: it consumes the `resize` queue of the namespace with
prefetch 1 and manual acks, sleeps `params.sleep` seconds per job, acks, and exits 1 with a
`connection_lost` line when its connection dies (it does not reconnect).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pika
import pika.exceptions as pe

from shared.config import settings_or_exit
from shared.log import configure_logging, get_logger
from shared.topology import Names

MODULE = "tests.support.io_thread_consumer"
log = get_logger("io_thread_consumer")


def on_message(channel: Any, method: Any, _props: Any, body: bytes) -> None:
    job = json.loads(body)
    log.info("job_received", job_id=job["id"], redelivered=method.redelivered)
    time.sleep(float(job["params"].get("sleep", 0)))  # the mistake: no pumping meanwhile
    channel.basic_ack(method.delivery_tag)
    log.info("job_acked", job_id=job["id"])


def main() -> int:
    settings = settings_or_exit()
    configure_logging("io_thread_consumer", settings.log_level, settings.log_format)
    params = pika.URLParameters(settings.amqp_url)
    params.heartbeat = settings.amqp_heartbeat
    connection = pika.BlockingConnection(params)
    channel = connection.channel()
    channel.basic_qos(prefetch_count=1)
    channel.basic_consume(Names(settings.namespace).task_queue("resize"), on_message)
    log.info("consuming")
    try:
        channel.start_consuming()
    except pe.AMQPError as e:
        log.warning("connection_lost", error=f"{type(e).__name__}: {e}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
