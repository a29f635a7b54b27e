"""The one error hierarchy of jobsuite.

Handlers raise `PermanentJobError` (bad input: retrying cannot help) or `TransientJobError`
(a passing fault: retry with back-off). Everything pika raises is turned into a `BrokerError`
inside `shared/amqp/` (errors.py), so no other module needs to know pika's exceptions.
"""

from __future__ import annotations


class JobsuiteError(Exception):
    """Base of every error jobsuite raises on purpose."""


class ConfigError(JobsuiteError):
    """A setting is missing or malformed; raised once, at start-up."""


class JobError(JobsuiteError):
    """A job could not be done. `kind` is a short machine-readable reason for events."""

    kind = "job_error"

    def __init__(self, message: str, *, kind: str | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind


class PermanentJobError(JobError):
    """The job can never succeed as submitted (bad input, over a limit): dead-letter it."""

    kind = "permanent"


class TransientJobError(JobError):
    """A passing fault (a server down, a timeout): retry the job after a back-off."""

    kind = "transient"


class JobDeferred(JobError):
    """Not now, through no fault of the job's or the machine's: another worker is doing the
    job's one-time part (sending its mail). Retried after a back-off step that grows with each
    deferral, not counted as an attempt; what holds it runs out, so the deferrals end."""

    kind = "deferred"


class DecodeError(JobsuiteError):
    """A message body is not a valid job or event."""


class BlobError(JobsuiteError):
    """A blob key is invalid or a blob is missing."""


class BlobLinkError(BlobError):
    """A path under the blob store is a symbolic link (or leads outside the store): never
    followed, so nothing outside the store is read or written through it."""


class BlobStoreUnavailable(OSError):
    """An object store failed (unreachable, a timeout, a 5xx, access denied): an OSError, so
    callers treat it as a passing fault exactly as a failing disk; `errno` names the cause."""


class StateError(JobsuiteError):
    """The shared state (`shared/state`: idempotency keys, accepted jobs, the sent-mail
    ledger) cannot be opened, read or written."""


class AuditUnavailable(JobsuiteError):
    """The audit service's read API could not be reached or did not answer usefully."""


class BrokerError(JobsuiteError):
    """Something went wrong talking to RabbitMQ."""


class BrokerUnavailable(BrokerError):
    """The broker cannot be reached, or the connection was lost or blocked."""


class BrokerConnectFailed(BrokerUnavailable):
    """A connection attempt failed; the message is one line naming the cause and what to
    check. `cause` is a short word for logs and tests: refused, unknown_host, unreachable,
    timeout, not_amqp, tls, bad_credentials, vhost, network or other; with several broker
    nodes, the one all of them failed with, or several."""

    def __init__(self, message: str, *, cause: str) -> None:
        super().__init__(message)
        self.cause = cause


class AccessRefused(BrokerUnavailable):
    """The broker refused an operation to this connection's user (ACCESS_REFUSED): its
    permissions do not cover it."""


class PublishInDoubt(BrokerUnavailable):
    """A message was sent but no confirm came back (connection lost or blocked meanwhile):
    the broker may or may not have queued it. Only publishing it again under the same id,
    which consumers treat idempotently, settles the question."""


class PublishNacked(BrokerError):
    """The broker refused a message (nack, or returned as unroutable). `refused`: the ids
    of the messages refused, where the publisher knows them (empty: not known)."""

    def __init__(self, message: str, refused: frozenset[str] = frozenset()) -> None:
        super().__init__(message)
        self.refused = refused


class PublisherMismatch(PublishNacked):
    """The broker refused a message whose `user_id` is not the connection's user (it closes
    the channel with PRECONDITION_FAILED): a configuration error, never a passing fault."""
