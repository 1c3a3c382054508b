"""Receiving QoS 1 messages with gmqtt and acknowledging them a whole batch at a time.

gmqtt either acknowledges at once (before we have stored anything) or after a coroutine per
message has finished, which costs a Task, a future and a suspended frame per message: about 40%
of a worker's CPU at one reading per message. We need neither: a message is appended to the
current batch synchronously, and PUBACKs for the whole batch go out after its commit. So this
module hooks gmqtt's QoS 1 dispatch (pinned gmqtt==0.8.0; the kill-and-restart integration test
fails if a later gmqtt acknowledges early). A PUBACK is only sent on the connection that carried
the message: after a reconnect the broker redelivers unacknowledged messages with new ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from gmqtt import Client


class Delivery(NamedTuple):
    topic: str
    payload: bytes
    mid: int | None  # None for QoS 0: nothing to acknowledge
    connection: object  # the connection that carried it


Sink = Callable[[Delivery], None]


def _text(topic: str | bytes) -> str:
    # gmqtt hands over undecodable topics as bytes; they still deserve a dead letter.
    return topic if isinstance(topic, str) else topic.decode("utf-8", errors="replace")


def attach(client: Client, sink: Sink, *, ack_on_receipt: bool = False) -> None:
    """Route every QoS 0/1 message to ``sink``; QoS 1 stays unacknowledged until ``acknowledge``
    unless ``ack_on_receipt`` (only for brokers that drop slow-to-ack messages, see demo.py)."""
    handler: Any = client._package_handler

    def on_qos1(mid: int, payload: bytes, topic: str | bytes, properties: Any) -> None:
        if ack_on_receipt:
            handler._send_puback(mid)
            sink(Delivery(_text(topic), payload, None, client._connection))
            return
        sink(Delivery(_text(topic), payload, mid, client._connection))

    def on_message(_client: Any, topic: str | bytes, payload: bytes, qos: int, props: Any) -> None:
        sink(Delivery(_text(topic), payload, None, client._connection))

    handler._handle_qos_1_publish_packet = on_qos1
    client.on_message = on_message


def acknowledge(client: Client, deliveries: Iterable[Delivery]) -> int:
    """Send PUBACK for each QoS 1 delivery still on the live connection; returns how many."""
    handler: Any = client._package_handler
    current = client._connection
    sent = 0
    for delivery in deliveries:
        if delivery.mid is not None and delivery.connection is current:
            handler._send_puback(delivery.mid)
            sent += 1
    return sent
