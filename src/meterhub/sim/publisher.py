"""Send publications to an MQTT broker with paho-mqtt 2.x: one client for the whole fleet.

MQTT v5, QoS as the publication says (1 on the contract). Memory stays bounded: paho keeps at
most 1000 messages in flight, and ``publish`` waits while more than ``max_queued`` messages are
not yet delivered (in paho's queue, awaiting PUBACK, or awaiting a resend).

A PUBACK with a failure code, 0x10 "no matching subscribers" included (a broker restart can leave
the platform's ingest worker unsubscribed for a moment, and the broker then drops the message),
means not delivered: the publication is kept and published again after a backoff, in rounds (one
per backoff, however many failed), as ``meterhub.edge.puback`` describes: 1 s doubling to 30 s,
to 5 minutes for 0x87 "not authorised" (a misconfigured ACL is not retried in a hot loop, and the
messages go once it is fixed); 0x90 and 0x99 (the message itself is refused) are given up and
counted in ``rejected``. ``flush`` waits for resends too, up to its timeout; ``undelivered``
says how many were still not delivered when it gave up.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from meterhub.mqtt import puback
from meterhub.sim.engine import Publication

log = logging.getLogger("meterhub.sim.publisher")


class MqttPublisher:
    def __init__(
        self,
        url: str,
        ca_file: Path | None = None,
        client_id: str = "",
        max_queued: int = 5000,
        connect_timeout_s: float = 10.0,
        mqtt_v5: bool = True,
        on_delivered: Callable[[Publication], None] | None = None,
    ) -> None:
        """``on_delivered`` is called (on paho's thread) for each publication the broker took
        with a success PUBACK: what a fault test may hold the platform to."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"unsupported MQTT URL scheme {parts.scheme!r} (mqtt:// or mqtts://)")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        self.max_queued = max_queued
        self.connect_timeout_s = connect_timeout_s
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            # The demo's embedded broker (amqtt) speaks MQTT 3.1.1 only.
            protocol=mqtt.MQTTv5 if mqtt_v5 else mqtt.MQTTv311,
        )
        if parts.username:
            self._client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
        if parts.scheme == "mqtts":
            self._client.tls_set(
                ca_certs=str(ca_file) if ca_file else None, tls_version=ssl.PROTOCOL_TLS_CLIENT
            )
        self._on_delivered = on_delivered
        self._client.max_inflight_messages_set(1000)
        self._client.max_queued_messages_set(0)  # unbounded in paho; bounded here by waiting
        self._connected = threading.Event()
        self._client.on_connect = self._on_connect
        self._client.on_publish = self._on_publish
        self._pending = 0  # handed to paho, not yet delivered (PUBACK for QoS 1) or given up
        self._acked = threading.Condition()
        # paho mid -> publication, until its PUBACK. paho calls on_publish while holding its own
        # message lock, so no lock of ours is ever held across a call into paho.
        self._sent: dict[int, Publication] = {}
        self._early: dict[int, tuple[int, str]] = {}  # PUBACKs that beat the mid's bookkeeping
        self._resend: list[Publication] = []  # not delivered, waiting for the round below
        self._resend_at: float | None = None  # monotonic time of the next round
        self._backoff = puback.Backoff()
        self._closing = False
        self._resender = threading.Thread(target=self._resend_rounds, daemon=True)
        self.published = 0
        self.not_delivered = 0  # PUBACKs with a failure code (0x10 included): sent again
        self.resent = 0  # publications sent again after a PUBACK that did not deliver
        self.rejected = 0  # given up: the broker will never take them (0x90, 0x99)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: object,
        reason_code: object,
        properties: object,
    ) -> None:
        self._connected.set()

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_code: ReasonCode,
        properties: object,
    ) -> None:
        code = reason_code.value if isinstance(reason_code, ReasonCode) else 0
        with self._acked:
            publication = self._sent.pop(mid, None)
            if publication is None:
                self._early[mid] = (code, str(reason_code))
                return
            self._settle(publication, code, str(reason_code))

    def _settle(self, publication: Publication, code: int, reason: str) -> None:
        """A PUBACK for ``publication`` (called with ``_acked`` held)."""
        result = puback.outcome(code, retained=publication.retain)
        if result is puback.Outcome.SEND_AGAIN:
            self.not_delivered += 1
            self._resend.append(publication)
            if self._resend_at is None:
                delay = self._backoff.next_delay(code)
                self._resend_at = time.monotonic() + delay
                log.warning(
                    "sim: broker did not deliver a message on %s (%s); sending it and any "
                    "others not delivered again in %.0f s",
                    publication.topic,
                    reason,
                    delay,
                )
            self._acked.notify_all()
            return
        if result is puback.Outcome.REJECTED:
            self.rejected += 1
            log.error("sim: broker will never take a message on %s (%s)", publication.topic, reason)
        else:
            self._backoff.reset()
            if self._on_delivered is not None:
                self._on_delivered(publication)
        self._pending -= 1
        self._acked.notify_all()

    def _send(self, publication: Publication) -> mqtt.MQTTMessageInfo:
        info = self._client.publish(
            publication.topic, publication.payload, publication.qos, publication.retain
        )
        with self._acked:
            early = self._early.pop(info.mid, None)
            if early is None:
                self._sent[info.mid] = publication
            else:
                self._settle(publication, *early)
        return info

    def _resend_rounds(self) -> None:
        while True:
            with self._acked:
                while not self._closing and (
                    self._resend_at is None or time.monotonic() < self._resend_at
                ):
                    left = None if self._resend_at is None else self._resend_at - time.monotonic()
                    self._acked.wait(None if left is None else max(0.0, left))
                if self._closing:
                    return
                batch, self._resend, self._resend_at = self._resend, [], None
            for publication in batch:
                self._send(publication)
                self.resent += 1

    def connect(self) -> None:
        self._client.connect(self.host, self.port, keepalive=60)
        self._client.loop_start()
        if not self._connected.wait(self.connect_timeout_s):
            self.close()
            raise ConnectionError(f"no CONNACK from {self.host}:{self.port}")
        self._resender.start()

    def publish(self, publication: Publication) -> None:
        # Back-pressure: wait while too many messages are not yet delivered.
        with self._acked:
            while self._pending >= self.max_queued:
                self._acked.wait(1.0)
            self._pending += 1
        info = self._send(publication)
        if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
            raise ConnectionError(f"publish failed: {mqtt.error_string(info.rc)}")
        self.published += 1

    @property
    def undelivered(self) -> int:
        """Publications neither delivered nor given up yet (awaiting PUBACK or a resend)."""
        with self._acked:
            return self._pending

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every QoS 1 message has been acknowledged; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._acked:
            while self._pending > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._acked.wait(left)
        return True

    def close(self) -> None:
        with self._acked:
            self._closing = True
            self._acked.notify_all()
        if self._resender.is_alive():
            self._resender.join(5)
        if self._pending:
            log.warning("sim: closing with %d messages not delivered", self._pending)
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> MqttPublisher:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.flush()
        self.close()
