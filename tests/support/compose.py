"""The suite as a docker compose project: bring it up, find and control its containers
(docker SDK), talk to its published gateway, mail sink and Prometheus, and tear it all down."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import httpx
import yaml
from docker.models.containers import Container

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SINGLE_HOST = ROOT / "docker-compose.yml"
# Three broker nodes, PostgreSQL and an S3 server; no shared volume (its own tests).
CLUSTER = ROOT / "deploy" / "compose.cluster.yml"
TERMINAL = {"succeeded", "failed", "dead"}
TERMINAL_EVENTS = {"job.succeeded", "job.failed"}


def compose_command() -> list[str]:
    """deploy/compose.sh: `docker compose` (v2) where the plugin is installed, else
    `docker-compose` (v1), as `make up` picks it."""
    return [str(ROOT / "deploy" / "compose.sh")]


def wait_until(what: str, check: Callable[[], Any], timeout: float, every: float = 0.2) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


@dataclass
class ComposeStack:
    """One compose project (docker-compose.yml unless `file` says), on free loopback ports of
    its own, with passwords of its own."""

    project: str = field(default_factory=lambda: f"jobsuite-test-{uuid.uuid4().hex[:8]}")
    gateway_port: int = field(default_factory=free_port)
    mailsink_port: int = field(default_factory=free_port)
    audit_port: int = field(default_factory=free_port)
    ui_port: int = field(default_factory=free_port)
    prometheus_port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: uuid.uuid4().hex)
    profiles: tuple[str, ...] = ()  # compose profiles for every command (up and down alike)
    file: Path = SINGLE_HOST

    def __post_init__(self) -> None:
        self.command = compose_command()
        self.docker = docker.from_env()
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.gateway_port}", timeout=30)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "COMPOSE_PROJECT_NAME": self.project,
            "RABBITMQ_USER": "jobsuite",
            "RABBITMQ_PASSWORD": self.password,
            "AUDIT_API_KEY": f"audit-{self.password}",
            "AUDIT_SIGNING_KEY": f"signing-{self.password}",
            "MAILSINK_UI_AUTH": f"sink:{self.password}",
            "GATEWAY_PUBLISHED_PORT": str(self.gateway_port),
            "MAILSINK_PUBLISHED_PORT": str(self.mailsink_port),
            "AUDIT_PUBLISHED_PORT": str(self.audit_port),
            "RABBITMQ_UI_PUBLISHED_PORT": str(self.ui_port),
            "PROMETHEUS_PUBLISHED_PORT": str(self.prometheus_port),
            "JOBSUITE_IMAGE": f"{self.project}:latest",
            "COMPOSE_PROFILES": ",".join(self.profiles),
            # compose.cluster.yml's: the nodes' cookie, one scheduler thread per node (three
            # nodes share CI's two cores), the database's and the S3 store's secrets.
            "RABBITMQ_ERLANG_COOKIE": f"cookie-{self.password}",
            "RABBITMQ_ERL_ARGS": "+S 1:1",
            "POSTGRES_PASSWORD": f"pg-{self.password}",
            "S3_SECRET_KEY": f"s3-{self.password}",
        }

    def compose(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, "--file", str(self.file), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def up(self, *args: str) -> None:
        result = self.compose("up", "--detach", "--build", *args)
        if result.returncode != 0:
            raise RuntimeError(f"compose up failed:\n{result.stdout}\n{result.stderr}")

    def down(self) -> None:
        self.http.close()
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "30")
        with contextlib.suppress(docker.errors.ImageNotFound):
            self.docker.images.remove(f"{self.project}:latest", force=True)

    def create_key(self, name: str, *options: str) -> str:
        """A key made by `jobsuite keys create` inside the gateway container (its key store is
        the state volume the gateway and the audit share): the last line of its output."""
        result = self.compose(
            "exec", "-T", "gateway", "jobsuite", "keys", "create", name, "--rotate", *options
        )
        if result.returncode != 0:
            raise RuntimeError(f"keys create failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout.strip().splitlines()[-1]

    def use_admin_key(self) -> None:
        """From now on `http` sends a fresh admin key (call it once the gateway is up)."""
        key = self.create_key("compose-admin", "--admin")
        self.http.headers["Authorization"] = f"Bearer {key}"

    def services(self) -> list[str]:
        """Every service the compose file declares, in its order."""
        return list(yaml.safe_load(self.file.read_text())["services"])

    def logs(self, service: str, tail: int = 200) -> str:
        return self.compose("logs", "--no-color", "--tail", str(tail), service).stdout

    def containers(self, service: str, running: bool = True) -> list[Container]:
        filters = {
            "label": [
                f"com.docker.compose.project={self.project}",
                f"com.docker.compose.service={service}",
            ]
        }
        return self.docker.containers.list(all=not running, filters=filters)

    def container(self, service: str) -> Container:
        (only,) = self.containers(service)
        return only

    def by_hostname(self, service: str, hostname: str) -> Container:
        for container in self.containers(service, running=False):
            if container.attrs["Config"]["Hostname"] == hostname:
                return container
        raise AssertionError(f"no {service} container has the host name {hostname}")

    def wait_healthy(self, services: Iterable[str], timeout: float = 180) -> None:
        def healthy() -> bool:
            for service in services:
                for container in self.containers(service):
                    container.reload()
                    if container.attrs["State"].get("Health", {}).get("Status") != "healthy":
                        return False
            return True

        wait_until(f"{', '.join(services)} to be healthy", healthy, timeout, every=1)

    def wait_consuming(self, service: str, count: int, timeout: float = 120) -> None:
        """Each of `count` replicas has logged that it consumes (since its last start)."""

        def consuming() -> bool:
            containers = self.containers(service)
            return len(containers) == count and all(
                b'"consuming"' in c.logs(since=_started(c)) for c in containers
            )

        wait_until(f"{count} {service} replicas consuming", consuming, timeout, every=1)

    # The gateway, as a client would use it.

    def submit_resize(self, image: bytes, name: str = "photo.jpg", **fields: str) -> str:
        response = self.http.post("/jobs/resize", files={"file": (name, image)}, data=fields)
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    def submit_json(self, job_type: str, body: dict[str, Any]) -> str:
        response = self.http.post(f"/jobs/{job_type}", json=body)
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    def record(self, job_id: str) -> dict[str, Any]:
        response = self.http.get(f"/jobs/{job_id}")
        return dict(response.json()) if response.status_code == 200 else {}

    def wait_finished(self, job_ids: Iterable[str], timeout: float = 180) -> dict[str, Any]:
        """Every job's record once all of them have a terminal status in the audit log.

        Until the audit has recorded a job, the gateway answers from the output manifest
        (status only, no events): such a record does not count as finished here."""
        records: dict[str, dict[str, Any]] = {}
        pending = set(job_ids)

        def all_done() -> bool:
            for job_id in list(pending):
                record = self.record(job_id)
                recorded = {e["event"] for e in record.get("events", [])}
                if record.get("status") in TERMINAL and recorded & TERMINAL_EVENTS:
                    records[job_id] = record
                    pending.discard(job_id)
            return not pending

        wait_until(f"{len(pending)} jobs to finish", all_done, timeout, every=0.5)
        return records

    def wait_started(self, job_id: str, timeout: float = 60) -> str:
        """The host name of the replica that started the job (from its `job.started`)."""

        def started() -> str | None:
            for event in self.record(job_id).get("events", []):
                if event["event"] == "job.started":
                    return str(event["instance"]).split(":")[0]
            return None

        return str(wait_until(f"job {job_id} to start", started, timeout, every=0.05))

    def prometheus(self, path: str, **params: str) -> httpx.Response:
        """GET from the published Prometheus (profile `monitoring`)."""
        return httpx.get(
            f"http://127.0.0.1:{self.prometheus_port}{path}", params=params, timeout=10
        )

    def audit(self, path: str) -> httpx.Response:
        """GET from the published audit read API, as the admin (AUDIT_API_KEY)."""
        return httpx.get(
            f"http://127.0.0.1:{self.audit_port}{path}",
            auth=("admin", f"audit-{self.password}"),
            timeout=10,
        )

    def mailsink(self, path: str) -> httpx.Response:
        return httpx.get(
            f"http://127.0.0.1:{self.mailsink_port}{path}", auth=("sink", self.password), timeout=10
        )


def hostnames(record: dict[str, Any], event: str) -> list[str]:
    """The host names of the replicas that emitted `event` for this job."""
    return [e["instance"].split(":")[0] for e in record["events"] if e["event"] == event]


def _started(container: Container) -> int:
    container.reload()
    started_at = container.attrs["State"]["StartedAt"]  # RFC 3339 with nanoseconds
    return int(datetime.fromisoformat(started_at[:19] + "+00:00").timestamp())
