"""Building lifecycle events: who said it (service, instance) and about which job."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from shared.messages import ErrorInfo, Event, EventName, Job


def instance_name() -> str:
    """Host name and process id: replicas (containers or processes) can be told apart."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class EventSource:
    service: str
    instance: str

    def about(self, event: EventName, job: Job, **fields: Any) -> Event:
        return Event(
            event=event,
            job_id=job.id,
            type=job.type,
            service=self.service,
            instance=self.instance,
            attempt=job.attempt,
            parent_id=job.parent_id,
            client=job.client,
            trace_id=job.trace_id,
            **fields,
        )

    def failure(self, event: EventName, job: Job, kind: str, message: str, **fields: Any) -> Event:
        return self.about(event, job, error=ErrorInfo(kind=kind, message=message), **fields)
