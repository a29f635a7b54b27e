"""`python -m shared.readiness gateway=1,resizer=4,…`: wait until the local suite answers, print
the one line that says where it is, then wait to be stopped (`make run` runs it beside the
services, and honcho stops everything once any of its processes ends).

The HTTP services are ready when their `/healthz` says 200 (the gateway's only once it holds a
broker connection); a worker when its job types' queues have as many consumers as replicas
were started. Each probe returns None when ready, else the reason.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx

from shared.amqp import connect_once
from shared.config import Settings, settings_or_exit
from shared.errors import BrokerError
from shared.jobtypes import JOB_TYPES
from shared.topology import Names

HTTP_SERVICES = ("gateway", "audit", "mailsink")
_WILDCARDS = {"", "0.0.0.0", "::"}  # a listening side's "every address"


@dataclass(frozen=True)
class Probe:
    name: str
    check: Callable[[], str | None]  # None: ready; else why not, in a few words


def _base(host: str, port: int) -> str:
    host = "127.0.0.1" if host in _WILDCARDS else host
    return f"http://{'localhost' if host == '127.0.0.1' else host}:{port}"


def service_urls(settings: Settings) -> dict[str, str]:
    """Where a person reaches each HTTP service from this machine."""
    return {
        "gateway": _base(settings.gateway_host, settings.gateway_port),
        "audit": settings.audit_url.rstrip("/"),
        "mailsink": _base(settings.mailsink_host, settings.mailsink_http_port),
    }


def ready_line(settings: Settings) -> str:
    urls = service_urls(settings)
    return (
        f"jobsuite is ready: gateway {urls['gateway']} (API docs {urls['gateway']}/docs),"
        f" console {urls['audit']}/, mail view {urls['mailsink']}/ (Ctrl-C stops it all)"
    )


def http_probe(name: str, url: str) -> Probe:
    def check() -> str | None:
        try:
            status = httpx.get(f"{url}/healthz", timeout=2).status_code
        except httpx.HTTPError as e:
            return f"{url} does not answer ({type(e).__name__})"
        return None if status == 200 else f"{url}/healthz answers {status}"

    return Probe(name, check)


def consumer_probe(settings: Settings, service: str, replicas: int) -> Probe:
    """Each queue of the job types `service` runs has at least `replicas` consumers."""
    names = Names(settings.namespace)
    queues = [names.task_queue(spec.name) for spec in JOB_TYPES if spec.service == service]

    def check() -> str | None:
        try:
            connection = connect_once(settings, "jobsuite-readiness")
        except BrokerError as e:
            return f"no broker ({e})"
        try:
            channel = connection.channel()
            for queue in queues:
                _, consumers = channel.queue_depth(queue)
                if consumers < replicas:
                    return f"{consumers} of {replicas} consuming {queue}"
            return None
        except BrokerError as e:  # the queue not declared yet closes the channel
            return str(e)
        finally:
            connection.close()

    return Probe(service, check)


def probes(settings: Settings, processes: Mapping[str, int]) -> list[Probe]:
    """A probe for each Procfile process this module knows (name → replicas started)."""
    urls = service_urls(settings)
    workers = {spec.service for spec in JOB_TYPES}
    out = []
    for name, replicas in processes.items():
        if name in HTTP_SERVICES:
            out.append(http_probe(name, urls[name]))
        elif name in workers:
            out.append(consumer_probe(settings, name, replicas))
    return out


def not_ready(checks: list[Probe]) -> dict[str, str]:
    """Each probe that is not ready yet, with its reason."""
    reasons = {}
    for probe in checks:
        reason = probe.check()
        if reason is not None:
            reasons[probe.name] = reason
    return reasons


def wait_ready(
    checks: list[Probe],
    say: Callable[[str], None],
    stopped: Callable[[], bool],
    patience: float = 60.0,
    every: float = 0.5,
) -> bool:
    """Poll until every probe is ready (True) or `stopped()` (False). Past `patience`
    seconds, `say` once which are not ready yet and why; keep waiting."""
    started = time.monotonic()
    told = False
    pending = [p.name for p in checks]
    while not stopped():
        reasons = not_ready([p for p in checks if p.name in pending])
        pending = list(reasons)
        if not pending:
            return True
        if not told and time.monotonic() - started > patience:
            told = True
            say(
                f"not ready after {patience:.0f} s: "
                + "; ".join(f"{name}: {why}" for name, why in reasons.items())
            )
        time.sleep(every)
    return False


def parse_replicas(text: str) -> dict[str, int]:
    """`gateway=1,resizer=4` → {"gateway": 1, "resizer": 4}."""
    out: dict[str, int] = {}
    for item in text.split(","):
        name, _, count = item.partition("=")
        if name.strip():
            out[name.strip()] = int(count) if count.strip().isdigit() else 1
    return out


def main(argv: list[str]) -> int:
    settings = settings_or_exit()
    # pika would print its connection warnings while the broker or the queues are not up yet.
    logging.getLogger("pika").setLevel(logging.CRITICAL)

    def say(text: str) -> None:
        print(text, flush=True)

    try:
        checks = probes(settings, parse_replicas(argv[0] if argv else ""))
        if wait_ready(checks, say, stopped=lambda: False):
            say(ready_line(settings))
    except Exception as e:  # a line, never the suite's end (see the docstring)
        say(f"cannot tell whether the suite is ready: {type(e).__name__}: {e}")
    while True:  # until honcho's SIGTERM, whose default action ends this process
        signal.pause()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
