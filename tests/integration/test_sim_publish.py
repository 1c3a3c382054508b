"""A small fleet published to the machine's Mosquitto arrives whole (unique topic prefix); a
publication the broker did not deliver (PUBACK 0x10, no subscriber) is sent again (private broker).
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from private_broker import private_broker

from conftest import service_missing, wait_until
from meterhub.sim.engine import Engine, Publication, SimOptions
from meterhub.sim.publisher import MqttPublisher
from meterhub.sim.runner import run_simulation

pytestmark = pytest.mark.integration
HOST, PORT = "127.0.0.1", 1883
START = datetime(2026, 5, 4, 6, tzinfo=UTC)


def _broker_or_skip() -> None:
    try:
        socket.create_connection((HOST, PORT), timeout=2).close()
    except OSError as exc:
        service_missing(f"Mosquitto at {HOST}:{PORT} ({exc})")


def test_every_publication_of_a_few_simulated_hours_arrives():
    _broker_or_skip()
    prefix = f"simtest-{uuid.uuid4().hex[:12]}"
    options = SimOptions(
        meters=60,
        history_s=3 * 3600,
        speed=1e9,
        start=START,
        end=START + timedelta(hours=3),
        topic_prefix=prefix,
        seed=3,
    )
    expected_engine = Engine(options, START)
    expected = [(p.topic, p.payload) for p in expected_engine.status_publications()]
    expected += [(p.topic, p.payload) for p in expected_engine.history()]
    while True:
        due, pubs = expected_engine.live_step()
        if due > options.end:  # type: ignore[operator]
            break
        expected += [(p.topic, p.payload) for p in pubs]
    expected += [(p.topic, p.payload) for p in expected_engine.status_publications(online=False)]

    received: list[tuple[str, bytes]] = []
    lock = threading.Lock()
    subscribed = threading.Event()
    subscriber = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def on_message(client, userdata, message):
        with lock:
            received.append((message.topic, message.payload))

    subscriber.on_message = on_message
    subscriber.on_subscribe = lambda *args: subscribed.set()
    subscriber.connect(HOST, PORT)
    subscriber.subscribe(f"{prefix}/#", qos=1)
    subscriber.loop_start()
    try:
        assert subscribed.wait(5)
        with MqttPublisher(f"mqtt://{HOST}:{PORT}") as publisher:
            run_simulation(options, publisher.publish)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(received) < len(expected):
            time.sleep(0.05)
    finally:
        subscriber.loop_stop()
        subscriber.disconnect()
        # Clear the retained statuses so the broker keeps nothing of the test.
        cleaner = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        cleaner.connect(HOST, PORT)
        cleaner.loop_start()
        for meter in expected_engine.fleet.meters:
            cleaner.publish(
                f"{prefix}/{meter.meter_id}/status", b"", qos=1, retain=True
            ).wait_for_publish(5)
        cleaner.loop_stop()
        cleaner.disconnect()
    assert sorted(received) == sorted(expected)


@pytest.mark.timeout(60)
def test_a_publication_nobody_was_subscribed_to_is_sent_again(tmp_path: Path) -> None:
    """PUBACK 0x10 "no matching subscribers": the broker dropped the message (a broker restart
    can leave the platform's worker unsubscribed for a moment). The publisher keeps it and sends
    it again, with a backoff, until a subscriber takes it."""
    readings = [
        Publication(
            f"sim/M{i % 3}/readings", f'{{"ts": {1764000000 + i}, "import_kwh": {i}}}'.encode()
        )
        for i in range(20)
    ]
    status = Publication("sim/M0/status", b'{"online": true}', retain=True)
    received: list[tuple[str, bytes]] = []
    lock = threading.Lock()
    with private_broker(tmp_path, anonymous=True) as broker:
        broker.start()
        publisher = MqttPublisher(f"mqtt://127.0.0.1:{broker.port}")
        publisher.connect()
        try:
            # Retained: the broker keeps it for later subscribers, so 0x10 is a delivery.
            publisher.publish(status)
            assert publisher.flush(5)
            assert publisher.not_delivered == 0
            for publication in readings:
                publisher.publish(publication)
            wait_until(lambda: publisher.not_delivered >= 20, 10, "20 PUBACKs 0x10")
            assert publisher.undelivered == 20

            subscriber = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
            subscribed = threading.Event()

            def on_message(
                client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage
            ) -> None:
                with lock:
                    received.append((message.topic, bytes(message.payload)))

            subscriber.on_message = on_message
            subscriber.on_subscribe = lambda *args: subscribed.set()
            subscriber.connect("127.0.0.1", broker.port)
            subscriber.subscribe("sim/+/readings", qos=1)
            subscriber.loop_start()
            try:
                assert subscribed.wait(5)
                assert publisher.flush(20)
                wait_until(lambda: len(received) >= 20, 5, "every reading received")
            finally:
                subscriber.loop_stop()
                subscriber.disconnect()
        finally:
            publisher.close()
    assert sorted(set(received)) == sorted((p.topic, p.payload) for p in readings)
    assert publisher.undelivered == 0
    assert publisher.resent >= 20
    assert publisher.rejected == 0
