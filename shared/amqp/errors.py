"""pika's exceptions turned into ours: the rest of jobsuite never handles pika's exception zoo."""

from __future__ import annotations

from types import TracebackType

import pika.exceptions as pe
from pika.adapters.utils.connection_workflow import AMQPConnectorException

from shared.errors import (
    AccessRefused,
    BrokerError,
    BrokerUnavailable,
    PublisherMismatch,
    PublishInDoubt,
    PublishNacked,
)

# RabbitMQ's words when a message's user_id is not the connection's user.
_USER_ID_REFUSED = "user_id property set to"


class _Translating:
    """A block whose exceptions `__exit__` turns into ours, `what` naming the call in their
    messages. A class, not a generator: these wrap every publish, ack and wait, several
    times a job."""

    __slots__ = ("_what",)

    def __init__(self, what: str) -> None:
        self._what = what

    def __enter__(self) -> None:
        return None


class broker_errors(_Translating):  # lower case: used as a function, `with broker_errors(x):`
    """Turn pika's exceptions raised inside the block into BrokerError subclasses."""

    __slots__ = ()

    def __exit__(
        self, _type: type[BaseException] | None, e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        if e is None:
            return
        what = self._what
        if isinstance(e, pe.ChannelClosedByBroker):
            if (mismatch := _user_id_refused(what, e)) is not None:
                raise mismatch from e
            if e.reply_code == 403:
                raise AccessRefused(f"{what}: {e.reply_text}") from e
            raise BrokerUnavailable(f"{what}: {type(e).__name__}: {e}") from e
        if isinstance(e, pe.UnroutableError):
            raise PublishNacked(f"{what}: message returned as unroutable") from e
        if isinstance(e, pe.NackError):
            raise PublishNacked(f"{what}: broker nacked the message") from e
        if isinstance(e, (pe.AMQPError, AMQPConnectorException, OSError, AssertionError)):
            # AssertionError: pika asserts on some wrong-state calls after a connection died;
            # AMQPConnectorException: a handshake that timed out (not an AMQPError in pika).
            raise BrokerUnavailable(f"{what}: {type(e).__name__}: {e}") from e


class in_doubt_once_sent(_Translating):  # lower case: used as a function, as broker_errors
    """Around a wait for confirms of messages already sent: a connection that fails now
    leaves them in doubt (the broker may have queued them), raised as PublishInDoubt.
    A channel already closed refused before sending; a nack or a return is a clear no."""

    __slots__ = ()

    def __exit__(
        self, _type: type[BaseException] | None, e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        if e is None or isinstance(e, (pe.ChannelWrongStateError, pe.ConnectionWrongStateError)):
            return
        if isinstance(e, (pe.AMQPError, OSError)):
            raise sent_but_unconfirmed(self._what, e) from e


def sent_but_unconfirmed(what: str, error: BaseException, *, clear_no: bool = True) -> BrokerError:
    """What `error`, met while messages sent were waiting for their confirms, means for
    them: PublishInDoubt, unless the broker closed the channel for a clear no (and
    `clear_no`: the refusal is known to be about these messages)."""
    if clear_no and isinstance(error, pe.ChannelClosedByBroker):
        if (mismatch := _user_id_refused(what, error)) is not None:
            return mismatch
        if error.reply_code == 403:  # the user may not publish there: nothing was taken
            return AccessRefused(f"{what}: {error.reply_text}")
    return PublishInDoubt(f"{what}: sent, but not confirmed: {type(error).__name__}: {error}")


def _user_id_refused(what: str, e: pe.ChannelClosedByBroker) -> PublisherMismatch | None:
    """A refused user_id is a clear no (PRECONDITION_FAILED), not a message in doubt."""
    if e.reply_code == 406 and _USER_ID_REFUSED in str(e.reply_text):
        return PublisherMismatch(
            f"{what}: the broker refused the message's user_id ({e.reply_text}); a publisher"
            " must set user_id to the user of its AMQP_URL"
        )
    return None
