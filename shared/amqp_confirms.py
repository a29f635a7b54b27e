"""Pipelined publisher confirms (part of `amqp`): send a job's messages, then wait once."""

from __future__ import annotations

from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

from shared.amqp import Channel, broker_errors
from shared.errors import PublishNacked


class PipelinedChannel(Channel):
    """A confirm channel that can publish several messages and then wait once for them all.

    pika's BlockingChannel waits for each confirm in turn: a broker round trip, and for a
    quorum queue a disk sync, per message. Here confirms and returns are tracked on the
    channel underneath, as pika's asynchronous adapters do, so a job's events share a wait.
    """

    def __init__(self, raw: BlockingChannel, *, app_id: str) -> None:
        super().__init__(raw, app_id=app_id)
        self._impl = raw._impl  # pika's own Channel under the blocking one
        self._next_tag = 1
        self._unconfirmed: dict[int, str] = {}
        self._refused: list[str] = []
        selected: list[bool] = []
        with broker_errors("confirm.select"):
            self._impl.confirm_delivery(
                ack_nack_callback=self._on_confirm, callback=lambda _frame: selected.append(True)
            )
            self._impl.add_on_return_callback(self._on_return)
            raw._flush_output(lambda: bool(selected))

    def _send(
        self, exchange: str, routing_key: str, body: bytes, props: pika.BasicProperties
    ) -> None:
        # `publish` keeps Channel's promise: it returns once this message is confirmed.
        self._send_nowait(exchange, routing_key, body, props)
        self.wait_for_confirms()

    def publish_nowait(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        message_type: str,
        headers: dict[str, Any] | None = None,
    ) -> None:
        """Send a persistent, mandatory message; `wait_for_confirms` says how it went."""
        props = self._properties(message_id, message_type, headers)
        with broker_errors(f"publish to {exchange or 'default'}/{routing_key}"):
            self._send_nowait(exchange, routing_key, body, props)

    def _send_nowait(
        self, exchange: str, routing_key: str, body: bytes, props: pika.BasicProperties
    ) -> None:
        self._impl.basic_publish(exchange, routing_key, body, props, mandatory=True)
        self._unconfirmed[self._next_tag] = f"{props.type} {props.message_id}"
        self._next_tag += 1

    def wait_for_confirms(self) -> None:
        """Until every message sent so far is confirmed; PublishNacked names any refused."""
        with broker_errors("wait for publisher confirms"):
            self._raw._flush_output(lambda: not self._unconfirmed)
        if self._refused:
            refused, self._refused = self._refused, []
            raise PublishNacked("; ".join(refused))

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        tags = (
            [t for t in self._unconfirmed if t <= method.delivery_tag]
            if method.multiple
            else [method.delivery_tag]
        )
        for tag in tags:
            what = self._unconfirmed.pop(tag, "?")
            if isinstance(method, pika.spec.Basic.Nack):
                self._refused.append(f"{what}: nacked by the broker (queue full?)")

    def _on_return(self, _channel: Any, method: Any, props: Any, _body: bytes) -> None:
        # A mandatory message no queue took comes back before its confirm.
        what = f"{props.type} {props.message_id}"
        self._refused.append(f"{what}: returned as unroutable ({method.reply_text})")
