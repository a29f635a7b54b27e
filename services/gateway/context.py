"""The gateway's parts, built once from the settings and handed to the routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.gateway.publisher import JobPublisher, Publisher
from services.gateway.status import AuditClient, JobLookup
from services.gateway.submit import Submitter
from shared.blobs import BlobStore, open_blob_store
from shared.config import Settings
from shared.events import EventSource, instance_name
from shared.limits import Limits, limits_of
from shared.state import SubmissionLedger, open_submissions
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

    @classmethod
    def build(cls, settings: Settings, publisher: JobPublisher | None = None) -> Gateway:
        instance = instance_name()
        blobs = open_blob_store(settings)
        ledger = open_submissions(settings)
        publisher = publisher or Publisher(settings, name=connection_name(settings, instance))
        audit = AuditClient(settings.audit_url)
        submitter = Submitter(
            Names(settings.namespace), publisher, blobs, ledger, EventSource(SERVICE, instance)
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
        )

    def start(self) -> None:
        self.publisher.start()

    def close(self) -> None:
        self.publisher.close()
        self.audit.close()
        self.ledger.close()


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(_gateway)]
