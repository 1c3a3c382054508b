"""The edge gateway against a real, private Mosquitto that is killed and started again mid-stream,
that has no subscriber for the gateway's messages, or whose ACL does not let it publish yet.

The broker runs from a temporary config on a free port of 127.0.0.1 with ``persistence false``
(never the machine's broker on 1883, see private_broker.py) and is killed by its pid. The gateway
tails a file of native JSON lines (meter M-EDGE) with its own credentials. A broker started with
persistence off forgets every session, so a fresh subscriber is started after each restart; to
make sure it is subscribed before the gateway can deliver its spool, the restarted broker first
knows only the subscriber's password and learns the gateway's on SIGHUP (Mosquitto reloads its
password file then).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from private_broker import PrivateBroker, private_broker

from conftest import service_missing, wait_until
from meterhub.edge.gateway import Gateway, GatewayOptions
from meterhub.edge.sources import file_chunks

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

METER = "M-EDGE"
TOPIC = f"meters/{METER}/readings"
T0 = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    with private_broker(tmp_path) as running:
        running.users("sub", METER)
        running.start()
        yield running


class Subscriber:
    """QoS 1, fixed client id, persistent session; collects the ts of every reading received."""

    def __init__(self, port: int, received: list[str], user: str | None = "sub") -> None:
        self.received = received
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="edge-test-sub", protocol=mqtt.MQTTv5
        )
        if user is not None:
            self.client.username_pw_set(user, user)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(TOPIC, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, clean_start=False)
        self.client.loop_start()
        if not self.subscribed.wait(5):
            raise RuntimeError("subscriber not subscribed within 5 s")

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.received.append(json.loads(message.payload)["ts"])

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class GatewayThread:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.result: dict[str, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._started.set()
        self.result = await self.gateway.run(self._stop)

    def __enter__(self) -> GatewayThread:
        self._thread.start()
        self._started.wait(5)
        return self

    def stop(self) -> dict[str, Any]:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
        assert not self._thread.is_alive(), "gateway did not stop within 15 s"
        return self.result

    def __exit__(self, *exc: object) -> None:
        if self._thread.is_alive():
            self.stop()


def ts_of(i: int) -> str:
    return (T0 + timedelta(seconds=10 * i)).isoformat()


def append_readings(path: Path, numbers: range) -> None:
    with path.open("ab") as handle:
        for i in numbers:
            line = {"ts": ts_of(i), "seq": i, "import_kwh": 100 + i / 1000, "power_w": 500.0 + i}
            handle.write(json.dumps(line).encode() + b"\n")
        handle.flush()
        os.fsync(handle.fileno())


def make_gateway(broker: PrivateBroker, tmp_path: Path, feed: Path, **spool: int) -> Gateway:
    feed.touch()
    options = GatewayOptions(
        format_name="native",
        meter_id=METER,
        mqtt_url=f"mqtt://{METER}:{METER}@127.0.0.1:{broker.port}",
        spool_path=tmp_path / "spool.db",
        reconnect_max_s=1,
        status_interval_s=0.5,
        spool_max_messages=spool.get("max_messages", 100_000),
        spool_synchronous="NORMAL",
    )
    return Gateway(options, file_chunks(feed, follow=True, poll_s=0.05))


def restart_broker_then_subscribe(broker: PrivateBroker, received: list[str]) -> Subscriber:
    """Broker back on the same port; the subscriber in before the gateway may deliver."""
    broker.users("sub")
    broker.start()
    subscriber = Subscriber(broker.port, received)
    broker.users("sub", METER)
    broker.reload()
    return subscriber


def first_seen(received: list[str]) -> list[str]:
    return list(dict.fromkeys(received))  # QoS 1 may redeliver: dedupe by ts, keep order


def test_outage_within_spool_bound_loses_nothing(broker: PrivateBroker, tmp_path: Path) -> None:
    feed = tmp_path / "meter.jsonl"
    received: list[str] = []
    subscriber = Subscriber(broker.port, received)
    with GatewayThread(make_gateway(broker, tmp_path, feed)) as running:
        append_readings(feed, range(0, 20))
        wait_until(lambda: len(set(received)) >= 20, 15, "20 readings before the outage")
        subscriber.stop()
        broker.kill()

        append_readings(feed, range(20, 50))  # the broker is down: these go to the spool
        gateway = running.gateway
        wait_until(lambda: gateway.counters.readings == 50, 10, "readings read during outage")
        assert not gateway.uplink.connected

        subscriber = restart_broker_then_subscribe(broker, received)
        wait_until(lambda: len(set(received)) >= 50, 20, "the spool flushed after the outage")
        append_readings(feed, range(50, 60))
        wait_until(lambda: len(set(received)) >= 60, 10, "readings after the outage")
        result = running.stop()
    subscriber.stop()

    assert first_seen(received) == [ts_of(i) for i in range(60)]
    assert result["dropped"] == 0
    assert result["spooled"] == 0
    assert result["readings"] == 60
    assert result["published"] >= 60
    assert result["bytes_read"] == feed.stat().st_size
    assert result["bytes_sent"] > 0


def test_outage_beyond_spool_bound_drops_the_oldest(broker: PrivateBroker, tmp_path: Path) -> None:
    feed = tmp_path / "meter.jsonl"
    received: list[str] = []
    subscriber = Subscriber(broker.port, received)
    with GatewayThread(make_gateway(broker, tmp_path, feed, max_messages=10)) as running:
        gateway = running.gateway
        append_readings(feed, range(0, 10))
        wait_until(lambda: len(set(received)) >= 10, 15, "10 readings before the outage")
        wait_until(lambda: gateway.uplink.counters.published == 10, 5, "10 PUBACKs")
        subscriber.stop()
        broker.kill()

        append_readings(feed, range(10, 40))  # 30 readings into a spool of 10: 20 dropped
        wait_until(lambda: gateway.counters.readings == 40, 10, "readings read during outage")

        subscriber = restart_broker_then_subscribe(broker, received)
        wait_until(lambda: len(set(received)) >= 20, 20, "the spool flushed after the outage")
        wait_until(lambda: gateway.uplink.counters.published >= 20, 5, "PUBACKs after outage")
        result = running.stop()
    subscriber.stop()

    kept = [ts_of(i) for i in range(30, 40)]  # the newest 10 of the outage survive
    assert first_seen(received) == [ts_of(i) for i in range(10)] + kept
    assert result["dropped"] == 20
    assert result["spooled"] == 0


CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance"


def test_dsmr_telegrams_from_a_tcp_source_are_parsed_and_published(
    broker: PrivateBroker, tmp_path: Path
) -> None:
    """A P1-to-TCP bridge (ser2net and the like) serving real telegrams in ragged chunks."""
    from meterhub.edge.sources import tcp_chunks

    sample = CONFORMANCE / "dsmr" / "v5.txt"
    if not sample.exists():
        service_missing(f"the conformance corpus at {CONFORMANCE}")
    telegram = sample.read_bytes()
    stream = telegram * 3

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for start in range(0, len(stream), 97):  # chunks that cut through lines and CRCs
            writer.write(stream[start : start + 97])
            await writer.drain()
            await asyncio.sleep(0.005)
        await asyncio.sleep(30)  # keep the line open like a real bridge
        writer.close()

    payloads: list[dict[str, Any]] = []
    subscriber = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="edge-tcp-sub", protocol=mqtt.MQTTv5
    )
    subscriber.username_pw_set("sub", "sub")
    subscribed = threading.Event()
    subscriber.on_connect = lambda c, u, f, rc, p: c.subscribe(TOPIC, qos=1)
    subscriber.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
    subscriber.on_message = lambda c, u, m: payloads.append(json.loads(m.payload))
    subscriber.connect("127.0.0.1", broker.port)
    subscriber.loop_start()
    assert subscribed.wait(5)

    async def main() -> dict[str, Any]:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        options = GatewayOptions(
            format_name="dsmr",
            meter_id=METER,
            mqtt_url=f"mqtt://{METER}:{METER}@127.0.0.1:{broker.port}",
            spool_path=tmp_path / "spool.db",
            spool_synchronous="NORMAL",
        )
        stop = asyncio.Event()
        gateway = Gateway(options, tcp_chunks("127.0.0.1", port))
        running = asyncio.create_task(gateway.run(stop))
        deadline = time.monotonic() + 20
        while len(payloads) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stop.set()
        counters = await asyncio.wait_for(running, 15)
        server.close()
        return counters

    try:
        counters = asyncio.run(main())
    finally:
        subscriber.loop_stop()
        subscriber.disconnect()
    assert len(payloads) == 3
    # DSMR 5 sample: 1-0:1.8.1 4.426 + 1-0:1.8.2 2.399 = 6.825 kWh
    assert {p["import_kwh"] for p in payloads} == {6.825}
    assert counters["bytes_read"] == len(stream)
    assert counters["frames"] == 3


def test_no_subscriber_means_not_delivered_and_sent_again(
    broker: PrivateBroker, tmp_path: Path
) -> None:
    """MQTT 5 brokers answer 0x10 "no matching subscribers" and drop the message (a broker
    restart can leave the platform's worker unsubscribed for a moment): the spool keeps it."""
    feed = tmp_path / "meter.jsonl"
    received: list[str] = []
    with GatewayThread(make_gateway(broker, tmp_path, feed)) as running:
        gateway = running.gateway
        append_readings(feed, range(0, 10))
        wait_until(lambda: gateway.uplink.counters.not_delivered >= 1, 10, "a 0x10 PUBACK")
        wait_until(lambda: gateway.counters.readings == 10, 5, "10 readings read")
        assert gateway.uplink.counters.published == 0
        assert len(gateway.spool) == 10  # nothing deleted on a PUBACK that did not deliver

        subscriber = Subscriber(broker.port, received)
        wait_until(lambda: len(set(received)) >= 10, 20, "the kept readings, sent again")
        append_readings(feed, range(10, 15))
        wait_until(lambda: len(set(received)) >= 15, 10, "readings once subscribed")
        result = running.stop()
    subscriber.stop()

    assert first_seen(received) == [ts_of(i) for i in range(15)]
    assert result["spooled"] == 0
    assert result["not_delivered"] >= 1
    assert result["published"] == 15


def test_client_id_is_the_meter_id(broker: PrivateBroker, tmp_path: Path) -> None:
    # Mosquitto's dynamic security binds a meter's credential to a client id equal to its id.
    feed = tmp_path / "meter.jsonl"
    with GatewayThread(make_gateway(broker, tmp_path, feed)) as running:
        wait_until(lambda: running.gateway.uplink.connected, 10, "the gateway connected")
        running.stop()
    assert f" as {METER} (" in broker.log.read_text()


def test_not_authorised_is_kept_and_delivered_once_the_acl_allows_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """0x87: the message stays in the spool and goes again after a backoff (doubling up to 5
    minutes, so never a hot loop); once the operator fixes the ACL, it is delivered."""
    caplog.set_level(logging.WARNING, logger="meterhub.edge.uplink")
    feed = tmp_path / "meter.jsonl"
    received: list[str] = []
    with private_broker(tmp_path, acl=True) as broker:
        broker.users("sub", METER)
        broker.acl(
            f"user sub\ntopic read meters/#\n\nuser {METER}\ntopic write meters/{METER}/status\n"
        )
        broker.start()
        subscriber = Subscriber(broker.port, received)
        with GatewayThread(make_gateway(broker, tmp_path, feed)) as running:
            gateway = running.gateway
            append_readings(feed, range(0, 5))
            wait_until(lambda: gateway.uplink.counters.not_delivered >= 1, 10, "a 0x87 PUBACK")
            wait_until(lambda: gateway.counters.readings == 5, 5, "5 readings read")
            assert gateway.uplink.counters.published == 0
            assert len(gateway.spool) == 5

            broker.acl(
                f"user sub\ntopic read meters/#\n\nuser {METER}\ntopic write meters/{METER}/#\n"
            )
            broker.reload()
            wait_until(lambda: len(set(received)) >= 5, 20, "the kept readings, once allowed")
            result = running.stop()
        subscriber.stop()

    assert first_seen(received) == [ts_of(i) for i in range(5)]
    assert result["rejected"] == 0
    assert result["spooled"] == 0
    refusals = [r for r in caplog.records if "did not deliver" in r.getMessage()]
    assert refusals and all(r.levelno == logging.ERROR for r in refusals)
    assert "Not authorized" in refusals[0].getMessage()


def test_a_full_spool_is_told_once_per_episode(
    broker: PrivateBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="meterhub.edge")
    feed = tmp_path / "meter.jsonl"
    received: list[str] = []
    subscriber = Subscriber(broker.port, received)
    with GatewayThread(make_gateway(broker, tmp_path, feed, max_messages=10)) as running:
        gateway = running.gateway
        append_readings(feed, range(0, 5))
        wait_until(lambda: len(set(received)) >= 5, 15, "5 readings before the outage")
        subscriber.stop()
        broker.kill()
        append_readings(feed, range(5, 40))  # 35 readings into a spool of 10: 25 dropped
        wait_until(lambda: gateway.counters.readings == 40, 10, "readings read during outage")
        result = running.stop()

    assert result["dropped"] == 25
    messages = [r.getMessage() for r in caplog.records]
    full = [m for m in messages if m.startswith("edge spool_full")]
    assert len(full) == 1
    assert "max_messages=10" in full[0]
    [left] = [m for m in messages if m.startswith("edge exit_undelivered")]
    assert "spooled=10" in left and str(tmp_path / "spool.db") in left
