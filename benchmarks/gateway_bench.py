"""How many small render jobs per second the gateway accepts, per publisher design.

    .venv/bin/python -m benchmarks.gateway_bench [--jobs 3000] [--clients 32]

For each design a gateway process runs in a fresh namespace on the local RabbitMQ; client
threads (httpx, one client each) POST `{"template": "document"}` to /jobs/render as fast as
they get answers; accepted jobs / wall time is reported. Designs:

- `pool-N`: the gateway's Publisher on N connections (GATEWAY_PUBLISHERS), on an event loop
  of its own here, the callers' threads handing it their requests;
- `per-thread`: one connection + confirm channel per web worker thread (thread-local),
  publishing directly from the request thread.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future

import httpx
import uvicorn

from benchmarks.scratch import scratch_folder
from services.gateway.app import create_app
from services.gateway.context import connection_name
from services.gateway.publisher import JobPublisher, Outgoing, Publisher
from services.gateway.submit import event_message, job_message
from shared.amqp import Channel, connect_once
from shared.config import Settings, settings_or_exit
from shared.errors import BrokerError, BrokerUnavailable
from shared.events import EventSource
from shared.log import configure_logging
from shared.messages import Job
from shared.topology import Names, declare_topology
from tests.support.broker import AMQP_URL, TestBroker, unique_namespace
from tests.support.keys import admin_key, bearer
from tests.support.ports import free_port
from tests.support.processes import ROOT


class PerThreadPublisher:
    """Design B: each request thread publishes on its own connection (made on first use)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._local = threading.local()
        self._count = 0
        self.last_error = ""

    @property
    def connected(self) -> bool:
        return self._count > 0

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass

    def _channel(self) -> Channel:
        channel: Channel | None = getattr(self._local, "channel", None)
        if channel is None or not channel.is_open:
            name = connection_name(self.settings, f"bench-{threading.get_ident()}")
            connection = connect_once(self.settings, name)
            channel = connection.channel(confirm=True)
            declare_topology(channel, self.settings)
            self._local.channel = channel
            self._count += 1
        return channel

    def publish(self, messages: Sequence[Outgoing], timeout: float = 0) -> None:
        for attempt in (1, 2):
            try:
                channel = self._channel()
                for m in messages:
                    channel.publish(
                        m.exchange,
                        m.routing_key,
                        m.body,
                        message_id=m.message_id,
                        message_type=m.message_type,
                    )
                return
            except BrokerUnavailable:
                self._local.channel = None
                if attempt == 2:
                    raise

    def send(self, messages: Sequence[Outgoing]) -> Future[None]:
        future: Future[None] = Future()
        try:
            self.publish(messages)
            future.set_result(None)
        except BrokerError as e:
            future.set_exception(e)
        return future


def serve(design: str) -> None:
    """The gateway process of one design (runs in a subprocess)."""
    settings = settings_or_exit()
    configure_logging("gateway", "warning", "json")
    publisher = PerThreadPublisher(settings) if design == "per-thread" else None
    app = create_app(settings, publisher=publisher)
    uvicorn.run(
        app, host="127.0.0.1", port=settings.gateway_port, log_config=None, access_log=False
    )


def measure(design: str, jobs: int, clients: int) -> float:
    namespace = unique_namespace("bench")
    port = free_port()
    with scratch_folder() as folder:
        settings = Settings(
            amqp_url=AMQP_URL,
            namespace=namespace,
            blob_dir=folder / "blobs",
            state_dir=folder / "state",
        )
        env = dict(
            os.environ,
            AMQP_URL=AMQP_URL,
            JOBSUITE_NAMESPACE=namespace,
            BLOB_DIR=str(settings.blob_dir),
            STATE_DIR=str(settings.state_dir),
            GATEWAY_PORT=str(port),
            GATEWAY_PUBLISHERS=design.removeprefix("pool-") if design.startswith("pool-") else "1",
        )
        command = [sys.executable, "-m", "benchmarks.gateway_bench", "--serve", design]
        server = subprocess.Popen(command, cwd=ROOT, env=env)
        broker = TestBroker(settings)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url)
            key = bearer(admin_key(settings.state_dir))
            post_many(url, 50, clients, key)  # warm up: connections, threads
            started = time.perf_counter()
            accepted = post_many(url, jobs, clients, key)
            elapsed = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(15)
            broker.close()
    return accepted / elapsed


def measure_direct(design: str, jobs: int, threads: int) -> float:
    """The publisher alone, in this process: `threads` callers publish job + event batches."""
    namespace = unique_namespace("bench")
    with scratch_folder() as folder:
        settings = Settings(amqp_url=AMQP_URL, namespace=namespace, blob_dir=folder)
        broker = TestBroker(settings)
        broker.declare()
        publisher: JobPublisher
        if design == "per-thread":
            publisher = PerThreadPublisher(settings)
        else:
            count = int(design.removeprefix("pool-"))
            name = connection_name(settings, "bench")
            publisher = Publisher(settings, name=name, connections=count)
        publisher.start()
        try:
            _call_many(publisher, Names(namespace), threads * 4, threads)  # warm up
            started = time.perf_counter()
            _call_many(publisher, Names(namespace), jobs, threads)
            elapsed = time.perf_counter() - started
        finally:
            publisher.close()
            broker.close()
    return jobs / elapsed


def _call_many(publisher: JobPublisher, names: Names, jobs: int, threads: int) -> None:
    counter = iter(range(jobs))
    lock = threading.Lock()
    source = EventSource("bench", "bench")

    def caller() -> None:
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            job = Job(type="render", params={"template": "document"})
            event = source.about("job.submitted", job)
            publisher.publish([job_message(names, job), event_message(names, event)])

    workers = [threading.Thread(target=caller) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/readyz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the gateway did not become ready")


def post_many(url: str, jobs: int, clients: int, headers: dict[str, str] | None = None) -> int:
    counter = iter(range(jobs))
    lock = threading.Lock()
    accepted = 0

    def client() -> None:
        nonlocal accepted
        with httpx.Client(base_url=url, timeout=60, headers=headers) as http:
            while True:
                with lock:
                    if next(counter, None) is None:
                        return
                response = http.post("/jobs/render", json={"template": "document"})
                if response.status_code == 202:
                    with lock:
                        accepted += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return accepted


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--designs", default="pool-1,pool-2,pool-4,pool-8,per-thread")
    parser.add_argument("--direct", action="store_true", help="the publisher alone, without HTTP")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return
    how = "publisher alone" if args.direct else "HTTP POST /jobs/render"
    print(f"| design | jobs/s, {how} ({args.jobs} jobs, {args.clients} threads) |")
    print("|---|---|")
    for design in args.designs.split(","):
        run = measure_direct if args.direct else measure
        rate = run(design, args.jobs, args.clients)
        print(f"| {design} | {rate:.0f} |", flush=True)


if __name__ == "__main__":
    main()
