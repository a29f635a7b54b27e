"""A job longer than several heartbeat timeouts (issue 7, item 3), with its negative control.

The same long job at the same short heartbeat on two consumers: the worker runner (the job on
a job thread while the connection's thread keeps pumping) keeps its connection and acks once;
a consumer that works on the connection's own thread loses its connection and the broker
redelivers its job. The control shows the conditions are harsh enough for the check to fail.
"""

from __future__ import annotations

from shared.messages import Job
from tests.conftest import SpawnFn
from tests.support import io_thread_consumer, scripted_worker
from tests.support.broker import TestBroker
from tests.support.processes import ServiceProcess
from tests.support.scripted_worker import handler_runs, scripted_job

HEARTBEAT_S = 1
LONG_JOB_S = 6  # six heartbeat timeouts: RabbitMQ drops a silent client after two to three


def start_long_job(spawn: SpawnFn, broker: TestBroker, module: str) -> tuple[ServiceProcess, Job]:
    consumer = spawn(module, AMQP_HEARTBEAT=str(HEARTBEAT_S))
    consumer.wait_logged("consuming")
    job = scripted_job(sleep=LONG_JOB_S)
    broker.publish_job(job)
    return consumer, job


def test_worker_runner_keeps_its_connection_through_a_job_of_six_heartbeat_timeouts(
    spawn: SpawnFn, broker: TestBroker
) -> None:
    events = broker.events()
    worker, job = start_long_job(spawn, broker, scripted_worker.MODULE)
    events.wait_for(job.id, "job.succeeded", timeout=LONG_JOB_S + 20)

    assert len(events.of(job.id, "job.started")) == 1  # delivered once: never taken back
    assert not worker.logged("connection_lost")
    assert len(worker.logged("consuming")) == 1
    assert len(handler_runs(broker.settings, job.id)) == 1
    task_queue = broker.names.task_queue("resize")
    broker.wait_until(lambda: broker.depth(task_queue) == 0, 5, "an empty task queue")
    assert broker.depth(broker.names.dead_queue) == 0


def test_consumer_working_on_the_connection_thread_loses_it_and_its_job_is_redelivered(
    spawn: SpawnFn, broker: TestBroker
) -> None:
    consumer, job = start_long_job(spawn, broker, io_thread_consumer.MODULE)
    task_queue = broker.names.task_queue("resize")
    # The broker takes the job back while the consumer is still asleep in its callback.
    broker.wait_until(lambda: broker.depth(task_queue) == 1, LONG_JOB_S - 1, "the job back")
    assert consumer.proc.poll() is None
    assert not consumer.logged("job_acked")

    # Its ack, once the job is done, meets a connection the broker has closed.
    assert consumer.wait(timeout=LONG_JOB_S + 20) == 1, consumer.tail()
    assert consumer.logged("connection_lost"), consumer.tail()
    assert not consumer.logged("job_acked")
    ((props, _body),) = broker.drain(task_queue)
    assert props.message_id == job.id
    # The quorum queue counts the delivery the broker took back: a redelivery is due.
    assert props.headers["x-delivery-count"] == 1
