"""A small fleet published to the machine's Mosquitto arrives whole (unique topic prefix)."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from meterhub.sim.engine import Engine, SimOptions
from meterhub.sim.publisher import MqttPublisher
from meterhub.sim.runner import run_simulation

pytestmark = pytest.mark.integration
HOST, PORT = "127.0.0.1", 1883
START = datetime(2026, 5, 4, 6, tzinfo=UTC)


def _broker_or_skip() -> None:
    try:
        socket.create_connection((HOST, PORT), timeout=2).close()
    except OSError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Mosquitto unreachable at {HOST}:{PORT} in CI: {exc}")
        pytest.skip(f"Mosquitto unreachable at {HOST}:{PORT}")


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
