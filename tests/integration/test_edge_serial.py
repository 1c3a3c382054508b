"""The serial source end to end: a pseudo-terminal stands in for the P1 cable.

``os.openpty()`` gives a master/slave pair; the gateway opens the slave's device path with
pyserial (``serial:///dev/pts/N?baud=...``) exactly as it would open /dev/ttyUSB0, and the test
writes real DSMR telegrams from the shared conformance corpus to the master in ragged chunks. The
readings go through framing, parsing and the spool into a private Mosquitto (see
test_edge_gateway.py). A Linux pty keeps the line discipline's flags (raw mode, speed) but always
reports CS8 without parity, so for 7E1 the test checks pyserial's settings, not the kernel's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from private_broker import PrivateBroker, private_broker
from test_edge_gateway import METER, TOPIC, GatewayThread

from conftest import service_missing, wait_until
from meterhub.edge.gateway import Gateway, GatewayOptions
from meterhub.edge.sources import open_source, parse_source_url

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance"
CHUNK = 61  # cuts through lines, OBIS codes and the CRC


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    with private_broker(tmp_path) as running:
        running.users("sub", METER)
        running.start()
        yield running


class Pty:
    """A master/slave pair; ``close`` closes each end once (a closed descriptor's number may
    already belong to someone else, so it is never closed twice)."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.device = os.ttyname(self.slave)
        self._open = [self.master, self.slave]

    def close(self) -> None:
        while self._open:
            with contextlib.suppress(OSError):
                os.close(self._open.pop())


@pytest.fixture
def pty() -> Iterator[Pty]:
    pair = Pty()
    try:
        yield pair
    finally:
        pair.close()


def telegram(name: str) -> bytes:
    sample = CONFORMANCE / "dsmr" / name
    if not sample.exists():
        service_missing(f"the conformance corpus at {CONFORMANCE}")
    return sample.read_bytes()


class Payloads:
    """A subscriber on the meter's readings topic that keeps every payload."""

    def __init__(self, port: int) -> None:
        self.received: list[dict[str, Any]] = []
        subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="edge-serial-sub", protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set("sub", "sub")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(TOPIC, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
        self.client.on_message = lambda c, u, m: self.received.append(json.loads(m.payload))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not subscribed.wait(5):
            self.stop()
            raise RuntimeError("subscriber not subscribed within 5 s")

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def wait_port_configured(slave: int, speed: int) -> None:
    """pyserial has opened the slave and set raw mode: bytes written now arrive unchanged (in
    the pty's default cooked mode CR would become LF and break every CRC)."""

    def configured() -> bool:
        attrs = termios.tcgetattr(slave)
        return not attrs[3] & termios.ICANON and attrs[5] == speed

    wait_until(configured, 10, "pyserial to open and configure the pty")


def write_ragged(master: int, data: bytes) -> None:
    for start in range(0, len(data), CHUNK):
        view = memoryview(data)[start : start + CHUNK]
        while view:  # a pty's buffer is a few KiB; the reader drains it
            view = view[os.write(master, view) :]
        time.sleep(0.003)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def source_log() -> Iterator[Records]:
    records = Records()
    logger = logging.getLogger("meterhub.edge.sources")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(records)
    try:
        yield records
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)


@pytest.mark.parametrize(
    ("sample", "query", "speed", "line", "kwh"),
    [
        # DSMR 5 (Iskra MT382): 115200 8N1; 1-0:1.8.1 4.426 + 1-0:1.8.2 2.399
        ("v5.txt", "baud=115200", termios.B115200, "115200 8N1", 6.825),
        # DSMR 2.2: 9600 7E1, no CRC; 1-0:1.8.1 1.001 + 1-0:1.8.2 1.001
        ("v2_2.txt", "baud=9600&bytesize=7&parity=E", termios.B9600, "9600 7E1", 2.002),
    ],
)
def test_dsmr_telegrams_from_a_serial_port_are_parsed_and_published(
    broker: PrivateBroker,
    pty: Pty,
    source_log: Records,
    tmp_path: Path,
    sample: str,
    query: str,
    speed: int,
    line: str,
    kwh: float,
) -> None:
    master, slave, device = pty.master, pty.slave, pty.device
    stream = telegram(sample) * 3
    spec = parse_source_url(f"serial://{device}?{query}")
    assert spec.path == device
    options = GatewayOptions(
        format_name="dsmr",
        meter_id=METER,
        mqtt_url=f"mqtt://{METER}:{METER}@127.0.0.1:{broker.port}",
        spool_path=tmp_path / "spool.db",
        spool_synchronous="NORMAL",
        source_name=spec.describe(),
    )
    subscriber = Payloads(broker.port)
    try:
        with GatewayThread(Gateway(options, open_source(spec))) as running:
            wait_port_configured(slave, speed)
            assert f"source serial:{device} open ({line})" in source_log.messages
            write_ragged(master, stream)
            wait_until(lambda: len(subscriber.received) >= 3, 20, "3 readings published")
            # A read blocked on the quiet port does not hold the stop (how fast it is let go:
            # benchmarks/edge_serial_stop.py).
            counters = running.stop()
    finally:
        subscriber.stop()
    assert len(subscriber.received) == 3
    assert {p["import_kwh"] for p in subscriber.received} == {kwh}
    assert counters["bytes_read"] == len(stream)
    assert counters["frames"] == 3
    assert counters["parse_errors"] == {}
    assert counters["skipped_bytes"] == 0
    assert counters["published"] == 3


def test_a_serial_port_that_goes_away_is_reopened_with_a_backoff(
    broker: PrivateBroker, pty: Pty, source_log: Records, tmp_path: Path
) -> None:
    """The cable is pulled (the pty's master is closed): the source logs it and keeps trying,
    and the gateway still stops promptly."""
    master, slave, device = pty.master, pty.slave, pty.device
    spec = parse_source_url(f"serial://{device}")
    options = GatewayOptions(
        format_name="dsmr",
        meter_id=METER,
        mqtt_url=f"mqtt://{METER}:{METER}@127.0.0.1:{broker.port}",
        spool_path=tmp_path / "spool.db",
        spool_synchronous="NORMAL",
    )
    subscriber = Payloads(broker.port)
    try:
        with GatewayThread(Gateway(options, open_source(spec))) as running:
            wait_port_configured(slave, termios.B115200)
            write_ragged(master, telegram("v5.txt"))
            wait_until(lambda: len(subscriber.received) >= 1, 20, "the first reading")
            pty.close()

            def complained() -> bool:
                return any(
                    "failed" in m or "cannot open" in m
                    for m in source_log.messages
                    if m.startswith(f"source serial:{device}")
                )

            wait_until(complained, 10, "the source to log the lost port")
            counters = running.stop()
    finally:
        subscriber.stop()
    assert counters["frames"] == 1
    assert counters["published"] == 1
