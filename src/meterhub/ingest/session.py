"""The ingest worker's MQTT connection: subscribed on every connection, and proved to deliver.

Two things a persistent session does not guarantee, learnt from Mosquitto 2.0: a broker that
restarts restores the worker's session but not its ``$share`` subscription, and a connection can
stay up while delivering nothing (another client took the session, a subscription was lost).
So the worker subscribes again on every CONNACK, whatever ``session present`` says, checks every
SUBACK, and publishes a probe to a topic of its own every ``probe_seconds``: a connection on which
not even the probe arrives for three periods is dropped and made again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from gmqtt import Client, Subscription
from gmqtt.mqtt.constants import MQTTv50

from meterhub.config import Settings
from meterhub.ingest.mqtt_source import Delivery, attach
from meterhub.mqtt import parse_broker_url

log = logging.getLogger("meterhub.ingest")

SESSION_EXPIRY_SECONDS = 7 * 24 * 3600
PROBE_PREFIX = "meterhub/probe"
# Probes missed before the connection counts as deaf.
PROBES_MISSED = 3
RESUBSCRIBE_SECONDS = 5.0
RECONNECT_SECONDS = 2


def subscription_filters(settings: Settings, mqtt_version: int) -> list[str]:
    filters = [f"{settings.topic_prefix}/+/{kind}" for kind in ("readings", "events", "status")]
    if settings.share_group and mqtt_version == MQTTv50:
        return [f"$share/{settings.share_group}/{f}" for f in filters]
    return filters


def probe_topic(worker_id: str) -> str:
    return f"{PROBE_PREFIX}/{worker_id}"


class BrokerSession:
    """One MQTT connection of a worker, kept subscribed; deliveries go to ``sink``."""

    def __init__(
        self,
        settings: Settings,
        sink: Callable[[Delivery], None],
        *,
        mqtt_version: int = MQTTv50,
        ack_on_receipt: bool = False,
        subscribe: bool = True,
    ) -> None:
        self.settings = settings
        self.mqtt_version = mqtt_version
        self.client_id = settings.effective_worker_id
        # The shared filters; a retiring worker does not subscribe but unsubscribes them.
        self.share_filters = subscription_filters(settings, mqtt_version)
        self.filters = self.share_filters if subscribe else []
        self.probe_topic = probe_topic(self.client_id)
        self._sink = sink
        self._ack_on_receipt = ack_on_receipt
        self.client = Client(
            self.client_id,
            clean_session=False,
            optimistic_acknowledgement=False,
            session_expiry_interval=SESSION_EXPIRY_SECONDS,
            receive_maximum=65535,
        )
        self.client.set_config({"reconnect_delay": RECONNECT_SECONDS})
        # Set (thread-safely) once the broker has granted every subscription on this connection.
        self.subscribed = threading.Event()
        self.connected = asyncio.Event()
        self.connections = 0
        self.last_delivery = time.monotonic()
        self._subscribe_mid: int | None = None
        self._closing = False
        self._probes_sent = 0

    # -- callbacks (event loop) ------------------------------------------------------------

    def _receive(self, delivery: Delivery) -> None:
        self.last_delivery = time.monotonic()
        if delivery.topic == self.probe_topic:
            return  # proof of life only; a QoS 0 probe needs no acknowledgement
        self._sink(delivery)

    def _on_connect(self, client: Client, flags: int, rc: int, properties: Any) -> None:
        self.connections += 1
        self.connected.set()
        self.subscribed.clear()
        self._probes_sent = 0
        self.last_delivery = time.monotonic()
        log.info(
            "ingest worker %s connected (session present: %s); subscribing",
            self.client_id,
            bool(flags),
        )
        self._subscribe()

    def _subscribe(self) -> None:
        # Always, even with a session present: the broker may have kept the session and lost
        # the subscriptions (Mosquitto does so with $share after a restart).
        self.client.subscriptions.clear()
        topics = [Subscription(f, qos=1) for f in self.filters]
        topics.append(Subscription(self.probe_topic, qos=0))
        self._subscribe_mid = self.client.subscribe(topics)

    def _on_subscribe(self, client: Client, mid: int, granted: Any, properties: Any) -> None:
        if mid != self._subscribe_mid:
            return
        codes = list(granted)
        names = [*self.filters, self.probe_topic]
        refused = [(name, code) for name, code in zip(names, codes, strict=False) if code >= 0x80]
        if refused:
            log.error(
                "broker refused subscriptions %s; trying again in %.0f s",
                ", ".join(f"{name} (0x{code:02x})" for name, code in refused),
                RESUBSCRIBE_SECONDS,
            )
            asyncio.get_running_loop().call_later(RESUBSCRIBE_SECONDS, self._resubscribe)
            return
        self.subscribed.set()
        log.info("ingest worker %s subscribed to %s", self.client_id, ", ".join(names))

    def _resubscribe(self) -> None:
        if self.client.is_connected and not self.subscribed.is_set():
            self._subscribe()

    def _on_disconnect(self, client: Client, packet: Any, exc: Any = None) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if not self._closing:
            log.warning("ingest worker %s lost its broker connection; reconnecting", self.client_id)

    # -- life ------------------------------------------------------------------------------

    async def connect(self) -> None:
        address = parse_broker_url(self.settings.mqtt_url)
        attach(self.client, self._receive, ack_on_receipt=self._ack_on_receipt)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        if address.username:
            self.client.set_auth_credentials(address.username, address.password)
        context = address.ssl_context(
            self.settings.mqtt_ca_file,
            self.settings.mqtt_client_cert,
            self.settings.mqtt_client_key,
        )
        await self.client.connect(
            address.host,
            address.port,
            ssl=context or False,
            version=self.mqtt_version,
            keepalive=30,
        )

    async def watch(self, stop: asyncio.Event) -> None:
        """Publish probes; reconnect a connection that delivers nothing."""
        period = self.settings.probe_seconds
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=period)
            if stop.is_set() or not self.client.is_connected or not self.subscribed.is_set():
                continue
            silent = time.monotonic() - self.last_delivery
            if self._probes_sent >= PROBES_MISSED and silent > PROBES_MISSED * period:
                log.warning(
                    "ingest worker %s received nothing for %.0f s, not even its own probe: "
                    "making the connection again",
                    self.client_id,
                    silent,
                )
                await self.reconnect()
                continue
            self.client.publish(self.probe_topic, b"", qos=0)
            self._probes_sent += 1

    async def reconnect(self) -> None:
        self.subscribed.clear()
        self._probes_sent = 0
        await self.client.reconnect()

    async def unsubscribe(self) -> None:
        """Leave the share: the broker routes no new message here (retiring a worker)."""
        self.client.unsubscribe(list(self.share_filters))

    async def close(self, *, end_session: bool = False) -> None:
        """Disconnect; ``end_session`` asks the broker to discard the session (MQTT 5)."""
        self._closing = True
        if end_session and self.mqtt_version == MQTTv50:
            await self.client.disconnect(session_expiry_interval=0)
        else:
            await self.client.disconnect()
