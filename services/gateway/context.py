"""The gateway's parts, built once from the settings and handed to the routes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from services.gateway.metrics import GatewayMetrics
from services.gateway.publisher import JobPublisher, Publisher
from services.gateway.ratelimit import SubmissionRate
from services.gateway.shared_buckets import SharedBuckets
from services.gateway.staged_commits import StagedCommits
from services.gateway.status import AuditClient, JobLookup
from services.gateway.submit import Submitter
from services.gateway.worker_share import WorkerShare
from shared.auth import Caller, caller_of
from shared.blobs import BlobStore, open_blob_store
from shared.blobs.janitor import start_janitor
from shared.config import Settings
from shared.events import EventSource, instance_name
from shared.limits import Limits, limits_of
from shared.state import ApiKeyStore, SubmissionLedger, open_api_keys, open_submissions
from shared.topology import Names

SERVICE = "gateway"


def connection_name(settings: Settings, instance: str) -> str:
    """Starts with the namespace, so a test can find (and close) exactly this connection."""
    prefix = f"{settings.namespace}." if settings.namespace else ""
    return f"{prefix}gateway:{instance}"


@dataclass
class Gateway:
    settings: Settings
    blobs: BlobStore
    ledger: SubmissionLedger
    publisher: JobPublisher
    audit: AuditClient
    lookup: JobLookup
    submitter: Submitter
    limits: Limits  # each job type's, by name
    keys: ApiKeyStore | None  # None: AUTH_DISABLED
    rate: SubmissionRate  # submissions per second, per key
    metrics: GatewayMetrics  # this app's own registry, served on /metrics
    share: WorkerShare | None = None  # with GATEWAY_WORKERS above 1: this worker's siblings
    # The flush of uploads staged on the event loop (services/gateway/staged_commits.py)
    commits: StagedCommits = field(default_factory=StagedCommits)
    # BLOB_RETENTION_DAYS: the janitor thread's stop (shared/blobs/janitor.py)
    stop_janitor: Callable[[], None] = field(default=lambda: None)

    @classmethod
    def build(
        cls,
        settings: Settings,
        publisher: JobPublisher | None = None,
        share: WorkerShare | None = None,
    ) -> Gateway:
        instance = instance_name()
        metrics = GatewayMetrics(served_from=share.metrics_folder if share else None)
        blobs = open_blob_store(settings)
        ledger = open_submissions(settings)
        publisher = publisher or Publisher(
            settings, name=connection_name(settings, instance), confirms=metrics.confirms
        )
        audit = AuditClient(settings.audit_url, api_key=settings.audit_api_key)
        submitter = Submitter(
            Names(settings.namespace),
            publisher,
            blobs,
            ledger,
            EventSource(SERVICE, instance),
            on_accepted=metrics.accepted,
        )
        return cls(
            settings=settings,
            blobs=blobs,
            ledger=ledger,
            publisher=publisher,
            audit=audit,
            lookup=JobLookup(audit, blobs, ledger),
            submitter=submitter,
            limits=limits_of(settings),
            keys=None if settings.auth_disabled else open_api_keys(settings),
            rate=SubmissionRate(buckets=SharedBuckets(share.rate_table) if share else None),
            metrics=metrics,
            share=share,
        )

    def start(self) -> None:
        self.publisher.start()
        if self.share is None or self.share.index == 0:  # one janitor per gateway
            self.stop_janitor = start_janitor(self.blobs, self.settings.blob_retention_days)

    async def aclose(self) -> None:
        """`close` on the event loop: the publisher's connections close cleanly first (a
        stand-in publisher without `aclose` is just closed)."""
        closing = getattr(self.publisher, "aclose", None)
        if closing is not None:
            await closing()
        self.close()

    def close(self) -> None:
        self.stop_janitor()
        self.publisher.close()
        self.audit.close()
        self.ledger.close()
        if self.keys is not None:
            self.keys.close()


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


# The dependencies are `async def` on purpose: they only read request state, and a sync one
# would cost a thread-pool hop per request each (profiled: the hops were a tenth of the
# gateway's CPU per accepted job).
async def _gateway_dep(request: Request) -> Gateway:
    return gateway_of(request)


async def _caller_dep(request: Request) -> Caller:
    return caller_of(request)


GatewayDep = Annotated[Gateway, Depends(_gateway_dep)]
CallerDep = Annotated[Caller, Depends(_caller_dep)]
