"""pika's exceptions turned into ours, around a call (`broker_errors`) and around a wait for
confirms of messages already sent (`in_doubt_once_sent`)."""

from __future__ import annotations

import pika.exceptions as pe
import pytest

from shared.amqp.errors import broker_errors, in_doubt_once_sent
from shared.errors import (
    AccessRefused,
    BrokerUnavailable,
    PublisherMismatch,
    PublishInDoubt,
    PublishNacked,
)


@pytest.mark.parametrize(
    ("raised", "expected", "words"),
    [
        (pe.ChannelClosedByBroker(403, "ACCESS_REFUSED - no"), AccessRefused, "x: ACCESS_REFUSED"),
        (
            pe.ChannelClosedByBroker(406, "PRECONDITION_FAILED - user_id property set to 'a'"),
            PublisherMismatch,
            "user_id",
        ),
        (pe.ChannelClosedByBroker(404, "NOT_FOUND"), BrokerUnavailable, "ChannelClosedByBroker"),
        (pe.UnroutableError([]), PublishNacked, "unroutable"),
        (pe.NackError([]), PublishNacked, "nacked"),
        (pe.StreamLostError("gone"), BrokerUnavailable, "x: StreamLostError: gone"),
        (ConnectionResetError("reset"), BrokerUnavailable, "ConnectionResetError"),
        (AssertionError("wrong state"), BrokerUnavailable, "AssertionError"),
    ],
)
def test_pika_errors_become_ours_with_the_original_as_cause(
    raised: BaseException, expected: type[BaseException], words: str
) -> None:
    with pytest.raises(expected, match=words) as caught, broker_errors("x"):
        raise raised
    assert caught.value.__cause__ is raised


def test_other_errors_and_a_clean_block_pass_through() -> None:
    with broker_errors("x"):
        pass
    with pytest.raises(KeyError), broker_errors("x"):
        raise KeyError("ours")


def test_a_failure_while_waiting_for_confirms_leaves_the_messages_in_doubt() -> None:
    lost = pe.StreamLostError("gone")
    in_doubt = pytest.raises(PublishInDoubt, match="sent, but not confirmed")
    with in_doubt as caught, in_doubt_once_sent("wait"):
        raise lost
    assert caught.value.__cause__ is lost


def test_a_clear_no_or_a_closed_channel_is_not_in_doubt() -> None:
    with pytest.raises(AccessRefused), in_doubt_once_sent("wait"):
        raise pe.ChannelClosedByBroker(403, "ACCESS_REFUSED")
    closed = pe.ChannelWrongStateError("closed")
    with pytest.raises(pe.ChannelWrongStateError) as caught, in_doubt_once_sent("wait"):
        raise closed
    assert caught.value is closed
    with pytest.raises(ValueError), in_doubt_once_sent("wait"):
        raise ValueError("not the broker's")
