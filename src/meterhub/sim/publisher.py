"""Send publications to an MQTT broker with paho-mqtt 2.x: one client for the whole fleet.

MQTT v5, QoS as the publication says (1 on the contract). Memory stays bounded: paho keeps at
most 1000 messages in flight, and ``publish`` waits while more than ``max_queued`` messages sit in
the client's outgoing queue.
"""

from __future__ import annotations

import ssl
import threading
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from meterhub.sim.engine import Publication


class MqttPublisher:
    def __init__(
        self,
        url: str,
        ca_file: Path | None = None,
        client_id: str = "",
        max_queued: int = 5000,
        connect_timeout_s: float = 10.0,
        mqtt_v5: bool = True,
    ) -> None:
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
        self._client.max_inflight_messages_set(1000)
        self._client.max_queued_messages_set(0)  # unbounded in paho; bounded here by waiting
        self._connected = threading.Event()
        self._client.on_connect = self._on_connect
        self._client.on_publish = self._on_publish
        self._pending = 0  # handed to paho, not yet acknowledged (PUBACK for QoS 1)
        self._acked = threading.Condition()
        self.published = 0

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
        reason_code: object,
        properties: object,
    ) -> None:
        with self._acked:
            self._pending -= 1
            self._acked.notify_all()

    def connect(self) -> None:
        self._client.connect(self.host, self.port, keepalive=60)
        self._client.loop_start()
        if not self._connected.wait(self.connect_timeout_s):
            self.close()
            raise ConnectionError(f"no CONNACK from {self.host}:{self.port}")

    def publish(self, publication: Publication) -> None:
        # Back-pressure: wait while the client holds too many messages not yet acknowledged.
        with self._acked:
            while self._pending >= self.max_queued:
                self._acked.wait(1.0)
            self._pending += 1
        info = self._client.publish(
            publication.topic, publication.payload, publication.qos, publication.retain
        )
        if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
            raise ConnectionError(f"publish failed: {mqtt.error_string(info.rc)}")
        self.published += 1

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
