"""Deliver the spool to the central broker with paho-mqtt 2.x: MQTT v5, QoS 1, TLS, last will.

Every message is already in the spool when it gets here. ``run`` publishes from the spool, oldest
first, with at most ``window`` messages awaiting PUBACK, and deletes each message when a PUBACK
that delivered it arrives. When the connection drops, whatever was in flight stays in the spool
and is sent again, in order, after the reconnect (paho's own copies are dropped on reconnect so
that the order is the spool's). A PUBACK with a failure code (0x10 "no matching subscribers"
included, see ``edge.puback``) leaves the message in the spool too: the uplink stops sending,
waits for the rest of the window's PUBACKs and a backoff, then sends the spool again from its
oldest message. So delivery is at least once: a message can arrive twice around an outage, never
not at all unless the spool's bound dropped it (or the broker called it malformed, 0x90/0x99).

paho runs its network loop in its own thread; its callbacks only hand events to the event loop
(``call_soon_threadsafe``), so the spool is touched from one thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from meterhub.edge.spool import Spool
from meterhub.mqtt import BrokerAddress, puback

log = logging.getLogger("meterhub.edge.uplink")

OFFLINE = b'{"online": false}'


@dataclass(slots=True)
class UplinkCounters:
    published: int = 0  # messages acknowledged by the broker
    bytes_sent: int = 0  # payload bytes of those messages
    rejected: int = 0  # PUBACK saying the message will never be taken (0x90, 0x99): deleted
    not_delivered: int = 0  # PUBACKs with another failure code (0x10, 0x87, ...): sent again
    connects: int = 0
    refused: int = 0  # CONNACKs with a failure reason (bad credentials, not authorised)
    connect_failures: int = 0  # connection attempts that failed below MQTT (network, TLS)


class Uplink:
    def __init__(
        self,
        spool: Spool,
        address: BrokerAddress,
        *,
        client_id: str,
        status_topic: str,
        ca_file: Path | None = None,
        window: int = 100,
        keepalive_s: int = 30,
        reconnect_max_s: int = 30,
    ) -> None:
        self.spool = spool
        self.address = address
        self.status_topic = status_topic
        self.window = window
        self.keepalive_s = keepalive_s
        self.reconnect_max_s = reconnect_max_s
        self.counters = UplinkCounters()
        self.connected = False
        self.status_payload: bytes = b'{"online": true}'  # sent, retained, on every connect
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._inflight: dict[int, tuple[int, int]] = {}  # paho mid -> (spool id, payload bytes)
        self._last_sent = 0  # highest spool id handed to paho on this connection
        # After a PUBACK that did not deliver: when (event loop time) to send the spool again
        # from its start; nothing new is sent meanwhile.
        self._send_again_at: float | None = None
        self._backoff = puback.Backoff(max_s=float(reconnect_max_s))
        self._failing_since: int = 0  # PUBACKs not delivered since the last one that delivered
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if address.username is not None:
            client.username_pw_set(address.username, address.password)
        context = address.ssl_context(ca_file)
        if context is not None:
            client.tls_set_context(context)
        client.will_set(status_topic, OFFLINE, qos=1, retain=True)
        client.max_inflight_messages_set(window)
        client.reconnect_delay_set(1, reconnect_max_s)
        client.on_connect = self._paho_connect
        client.on_connect_fail = self._paho_connect_fail
        client.on_disconnect = self._paho_disconnect
        client.on_publish = self._paho_publish
        self._client = client

    # -- paho's thread: hand everything to the event loop -----------------------------------

    def _call(self, callback: Callable[..., object], *args: object) -> None:
        if self._loop is not None:
            # RuntimeError: the event loop has ended, the gateway is shutting down.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(callback, *args)

    def _paho_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: object,
        reason_code: ReasonCode,
        properties: object,
    ) -> None:
        if reason_code.is_failure:
            self._call(self._on_refused, str(reason_code))
            return
        # paho would resend its unacknowledged copies now, ahead of the spool's order; the spool
        # has them all and resends them itself.
        client.drop_out_messages()
        self._call(self._on_connected)

    def _paho_connect_fail(self, client: mqtt.Client, userdata: object) -> None:
        # paho calls this from inside its ``except OSError`` around the (re)connect, and passes
        # no reason: the exception being handled is the reason (refused, TLS verification, ...).
        self._call(self._on_connect_fail, repr(sys.exc_info()[1]))

    def _paho_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: object,
        reason_code: ReasonCode,
        properties: object,
    ) -> None:
        self._call(self._on_disconnected, str(reason_code))

    def _paho_publish(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_code: ReasonCode,
        properties: object,
    ) -> None:
        self._call(self._on_ack, mid, reason_code.value, str(reason_code))

    # -- the event loop's thread -------------------------------------------------------------

    def _on_connected(self) -> None:
        self.connected = True
        self.counters.connects += 1
        self._inflight.clear()
        self._last_sent = 0
        log.info(
            "uplink connected to %s:%s; %d messages spooled",
            self.address.host,
            self.address.port,
            len(self.spool),
        )
        self._client.publish(self.status_topic, self.status_payload, qos=1, retain=True)
        self._wake.set()

    def _where(self) -> str:
        scheme = "mqtts" if self.address.tls else "mqtt"
        return f"{scheme}://{self.address.host}:{self.address.port}"

    def _on_refused(self, reason: str) -> None:
        self.counters.refused += 1
        log.error(
            "uplink refused by broker %s as user %r: %s; check the meter's credential (and the "
            "broker's password file and ACL); retrying with a backoff up to %d s, readings stay "
            "in the spool",
            self._where(),
            self.address.username,
            reason,
            self.reconnect_max_s,
        )

    def _on_connect_fail(self, reason: str) -> None:
        self.counters.connect_failures += 1
        log.error(
            "uplink cannot connect to %s: %s; retrying with a backoff up to %d s, readings stay "
            "in the spool",
            self._where(),
            reason,
            self.reconnect_max_s,
        )

    def _on_disconnected(self, reason: str) -> None:
        if self.connected:
            log.warning("uplink disconnected (%s); spooling", reason)
        self.connected = False
        # Everything in flight stays in the spool and goes again, in order, after the reconnect.
        self._inflight.clear()
        self._last_sent = 0

    def _on_ack(self, mid: int, code: int, reason: str) -> None:
        entry = self._inflight.pop(mid, None)
        if entry is None:
            return  # the status message, or an ack from before a reconnect
        spool_id, size = entry
        result = puback.outcome(code)
        if result is puback.Outcome.SEND_AGAIN:
            self._not_delivered(spool_id, code, reason)
        elif result is puback.Outcome.REJECTED:
            self.spool.delete([spool_id])
            self.counters.rejected += 1
            log.error(
                "uplink: broker will never take spooled message %d (%s): deleted", spool_id, reason
            )
        else:
            self.spool.delete([spool_id])
            self.counters.published += 1
            self.counters.bytes_sent += size
            self._backoff.reset()
            if self._failing_since:
                log.info(
                    "uplink: broker delivers again after %d PUBACKs that did not",
                    self._failing_since,
                )
                self._failing_since = 0
        self._wake.set()

    def _not_delivered(self, spool_id: int, code: int, reason: str) -> None:
        """Keep the message; one round of sending again per backoff, however many fail in it."""
        self.counters.not_delivered += 1
        self._failing_since += 1
        if self._send_again_at is not None or self._loop is None:
            return
        delay = self._backoff.next_delay(code)
        self._send_again_at = self._loop.time() + delay
        level = logging.ERROR if code == puback.NOT_AUTHORIZED else logging.WARNING
        log.log(
            level,
            "uplink: broker did not deliver spooled message %d (%s); it stays in the spool with "
            "%d others, all sent again in %.0f s",
            spool_id,
            reason,
            len(self.spool) - 1,
            delay,
        )

    def enqueue(self, topic: str, payload: bytes) -> None:
        self.spool.append(topic, payload)
        self._wake.set()

    def publish_status(self, payload: bytes) -> None:
        """Retained status, not spooled: only the latest matters, so an outage may skip some."""
        self.status_payload = payload
        if self.connected:
            self._client.publish(self.status_topic, payload, qos=1, retain=True)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._client.connect_async(self.address.host, self.address.port, self.keepalive_s)
        self._client.loop_start()

    def _pump(self) -> None:
        if self._send_again_at is not None:
            assert self._loop is not None
            if self._inflight or self._loop.time() < self._send_again_at:
                return  # the round's other PUBACKs first, then the backoff
            # Everything acknowledged so far is deleted: what is left was never delivered, and
            # goes again oldest first.
            self._send_again_at = None
            self._last_sent = 0
        while self.connected and len(self._inflight) < self.window:
            batch = self.spool.peek(self.window - len(self._inflight), after_id=self._last_sent)
            if not batch:
                return
            for message in batch:
                info = self._client.publish(message.topic, message.payload, 1, message.retain)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    # Lost the connection under our feet: the disconnect event will follow.
                    return
                self._inflight[info.mid] = (message.id, len(message.payload))
                self._last_sent = message.id

    async def run(self, stop: asyncio.Event) -> None:
        """Publish from the spool until ``stop``; call ``start`` first."""
        while not stop.is_set():
            self._wake.clear()
            self._pump()
            waker = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            timeout = 1.0
            if self._send_again_at is not None and self._loop is not None:
                timeout = min(timeout, max(0.01, self._send_again_at - self._loop.time()))
            await asyncio.wait(
                {waker, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            for task in (waker, stopper):
                task.cancel()

    async def drain(self, timeout_s: float) -> bool:
        """Wait (bounded) until the spool is empty; True when everything was acknowledged."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(self.spool) and loop.time() < deadline:
            self._pump()
            await asyncio.sleep(0.05)
        return not len(self.spool)

    async def close(self, offline_payload: bytes = OFFLINE, timeout_s: float = 5.0) -> None:
        """Say offline (retained) while still connected, then disconnect cleanly."""
        if self.connected:
            info = self._client.publish(self.status_topic, offline_payload, qos=1, retain=True)
            try:
                await asyncio.to_thread(info.wait_for_publish, timeout_s)
            except (RuntimeError, ValueError) as exc:
                log.warning("uplink: offline status not acknowledged: %s", exc)
        self.connected = False  # a disconnect we asked for: no "spooling" warning
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)
        self.connected = False
