"""The edge gateway on the production path: mqtts:// with the meter's own credential.

Mosquitto runs from meterhub's generated mosquitto.conf, password file and ACL with a TLS listener
signed by a throwaway CA (mosquitto_support.running_broker); the meter is registered with
registry.add_meter, which gives it its credential. The ingest service account subscribes the way
the platform does. Every wait is bounded; the broker is killed in its context's finalizer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import paho.mqtt.client as mqtt
import pytest
from mosquitto_support import Broker, running_broker
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine
from test_edge_gateway import GatewayThread

from conftest import wait_until
from meterhub.devices import mosquitto, registry
from meterhub.edge.gateway import Gateway, GatewayOptions
from meterhub.edge.sources import file_chunks

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

METER = "EDGE-TLS-1"
READINGS = f"meters/{METER}/readings"
STATUS = f"meters/{METER}/status"
T0 = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
WAIT_S = 30.0  # TLS handshakes and PBKDF2 checks on a loaded 2-core CI machine
REFUSED_WAIT_S = 10.0


class IngestSubscriber:
    """The meterhub-ingest service account over TLS, on the meter's readings and status."""

    def __init__(self, broker: Broker, client_id: str) -> None:
        self.messages: list[tuple[str, dict[str, Any], bool]] = []  # topic, payload, retained
        self.lock = threading.Lock()
        subscribed = threading.Event()
        account = mosquitto.INGEST_ACCOUNT
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(account, broker.services[account])
        self.client.tls_set(ca_certs=str(broker.ca))
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([(READINGS, 1), (STATUS, 1)])
        self.client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("localhost", broker.tls_port)
        self.client.loop_start()
        if not subscribed.wait(WAIT_S):
            self.stop()
            pytest.fail(f"ingest account not subscribed within {WAIT_S} s")

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((message.topic, json.loads(message.payload), message.retain))

    def on(self, topic: str) -> list[tuple[dict[str, Any], bool]]:
        with self.lock:
            return [(p, r) for t, p, r in self.messages if t == topic]

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@contextmanager
def ingest_subscriber(
    broker: Broker, client_id: str = "edge-tls-ingest"
) -> Iterator[IngestSubscriber]:
    subscriber = IngestSubscriber(broker, client_id)
    try:
        yield subscriber
    finally:
        subscriber.stop()


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.getMessage()}")


@pytest.fixture
def uplink_log() -> Iterator[Records]:
    records = Records()
    logger = logging.getLogger("meterhub.edge.uplink")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(records)
    try:
        yield records
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)


def write_readings(path: Path, count: int) -> list[str]:
    stamps = [(T0 + timedelta(seconds=10 * i)).isoformat() for i in range(count)]
    with path.open("w") as handle:
        for i, ts in enumerate(stamps):
            handle.write(json.dumps({"ts": ts, "seq": i, "import_kwh": 100 + i / 1000}) + "\n")
    return stamps


def gateway(
    broker: Broker, tmp_path: Path, feed: Path, secret: str, *, ca: bool = True, follow: bool
) -> Gateway:
    options = GatewayOptions(
        format_name="native",
        meter_id=METER,
        # "localhost": the hostname check runs against the server certificate's SAN.
        mqtt_url=f"mqtts://{METER}:{quote(secret, safe='')}@localhost:{broker.tls_port}",
        ca_file=broker.ca if ca else None,
        spool_path=tmp_path / f"spool-{feed.stem}.db",
        spool_synchronous="NORMAL",
        reconnect_max_s=1,
        status_interval_s=0.5,
        drain_timeout_s=WAIT_S,
        source_name=f"file:{feed}",
    )
    return Gateway(options, file_chunks(feed, follow=follow, poll_s=0.05))


def test_gateway_publishes_over_tls_with_its_own_credential(
    tmp_path: Path, sqlite_engine: Engine
) -> None:
    secret = registry.add_meter(sqlite_engine, METER)
    feed = tmp_path / "meter.jsonl"
    stamps = write_readings(feed, 25)
    with running_broker(tmp_path, sqlite_engine) as broker:
        with ingest_subscriber(broker) as ingest:
            # A finite file: the gateway reads it, waits for every PUBACK, says offline, stops.
            finite = gateway(broker, tmp_path, feed, secret, follow=False)
            counters = asyncio.run(asyncio.wait_for(finite.run(asyncio.Event()), 2 * WAIT_S))
            wait_until(lambda: len(ingest.on(READINGS)) >= 25, WAIT_S, "25 readings")
            wait_until(
                lambda: any(not p["online"] for p, _ in ingest.on(STATUS)), WAIT_S, "offline"
            )
            readings = [p for p, _ in ingest.on(READINGS)]
            statuses = [p for p, _ in ingest.on(STATUS)]
        # A subscriber that comes later gets the retained status: the final, offline one.
        with ingest_subscriber(broker, "edge-tls-late") as late:
            wait_until(lambda: bool(late.on(STATUS)), WAIT_S, "the retained status")
            retained = late.on(STATUS)
    assert sorted(dict.fromkeys(p["ts"] for p in readings)) == stamps
    assert counters["published"] == 25
    assert counters["spooled"] == 0
    assert counters["rejected"] == 0
    assert statuses[0]["online"] is True  # published, retained, on connect
    assert statuses[0]["gateway"] == "meterhub-edge"
    assert statuses[-1]["online"] is False
    assert statuses[-1]["counters"]["published"] == 25
    [(final, was_retained)] = retained
    assert was_retained
    assert final["online"] is False
    assert final["source"] == f"file:{feed}"


def test_gateway_with_a_wrong_password_publishes_nothing_and_says_why(
    tmp_path: Path, sqlite_engine: Engine, uplink_log: Records
) -> None:
    """Today's behaviour: the gateway keeps running, retries with a backoff (up to
    reconnect_max_s) and keeps the readings in its spool; every refusal is an error log line."""
    secret = registry.add_meter(sqlite_engine, METER)
    feed = tmp_path / "meter.jsonl"
    write_readings(feed, 5)
    with (
        running_broker(tmp_path, sqlite_engine) as broker,
        ingest_subscriber(broker) as ingest,
    ):
        bad = gateway(broker, tmp_path, feed, secret + "x", follow=True)
        with GatewayThread(bad) as running:

            def refused_twice() -> bool:
                return bad.uplink.counters.refused >= 2  # it retried after the first refusal

            wait_until(refused_twice, REFUSED_WAIT_S, "two refused CONNECTs")
            wait_until(lambda: bad.counters.messages == 5, REFUSED_WAIT_S, "5 readings spooled")
            counters = running.stop()
        assert ingest.on(READINGS) == []
        assert ingest.on(STATUS) == []
    assert counters["published"] == 0
    assert counters["spooled"] == 5  # kept for when the credential is fixed
    refusals = [line for line in uplink_log.lines if "refused by broker" in line]
    assert refusals, uplink_log.lines
    line = refusals[0]
    assert line.startswith("ERROR uplink refused by broker mqtts://localhost:")
    assert f"as user '{METER}'" in line
    assert "bad user name or password" in line.lower() or "not authorized" in line.lower()
    assert "check the meter's credential" in line
    assert "connected" not in " ".join(uplink_log.lines)


def test_gateway_that_does_not_trust_the_broker_certificate_says_why(
    tmp_path: Path, sqlite_engine: Engine, uplink_log: Records
) -> None:
    """No --ca-file: the test CA is not among the system's, so the TLS handshake fails. paho
    retries silently; the uplink logs each failure with its reason."""
    secret = registry.add_meter(sqlite_engine, METER)
    feed = tmp_path / "meter.jsonl"
    write_readings(feed, 3)
    with running_broker(tmp_path, sqlite_engine) as broker:
        untrusting = gateway(broker, tmp_path, feed, secret, ca=False, follow=True)
        with GatewayThread(untrusting) as running:
            wait_until(
                lambda: untrusting.uplink.counters.connect_failures >= 1,
                REFUSED_WAIT_S,
                "a failed TLS connection",
            )
            counters = running.stop()
    assert counters["published"] == 0
    failures = [line for line in uplink_log.lines if "cannot connect" in line]
    assert failures, uplink_log.lines
    assert failures[0].startswith("ERROR uplink cannot connect to mqtts://localhost:")
    assert "CERTIFICATE_VERIFY_FAILED" in failures[0]
