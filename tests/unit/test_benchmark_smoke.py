"""The ingest benchmark's pure helpers: payloads the worker accepts, MQTT packets, partitioning.

No broker, no database, no timing: the benchmark itself is run by hand (benchmarks/README.md).
"""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import orjson

from meterhub.protocols import native

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load() -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("bench_ingest", BENCHMARKS / "ingest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bench = _load()
START = datetime(2026, 1, 1, tzinfo=UTC)


def test_single_messages_are_valid_readings_in_time_order() -> None:
    messages = bench.single_messages(3, 4, START)
    assert len(messages) == 12
    seen: dict[str, list[datetime]] = {}
    for topic, payload in messages:
        meter_id = topic.split("/")[1]
        decoded = native.decode(meter_id, payload)
        assert not decoded.rejections
        (reading,) = decoded.readings
        seen.setdefault(meter_id, []).append(reading.ts)
    assert len(seen) == 3
    for stamps in seen.values():
        assert stamps == sorted(stamps) and len(set(stamps)) == 4
        assert stamps[1] - stamps[0] == timedelta(minutes=15)


def test_batched_messages_carry_distinct_monotonic_readings() -> None:
    messages = bench.batched_messages(2, 3, 5, START)
    assert len(messages) == 6
    per_meter: dict[str, list[float]] = {}
    keys = set()
    for topic, payload in messages:
        meter_id = topic.split("/")[1]
        decoded = native.decode(meter_id, payload)
        assert not decoded.rejections and len(decoded.readings) == 5
        for r in decoded.readings:
            keys.add((r.meter_id, r.ts))
            assert r.import_kwh is not None
            per_meter.setdefault(meter_id, []).append(r.import_kwh)
    assert len(keys) == 30
    for registers in per_meter.values():
        assert registers == sorted(registers)


def test_remaining_length_matches_the_mqtt_examples() -> None:
    assert bench.remaining_length(0) == b"\x00"
    assert bench.remaining_length(127) == b"\x7f"
    assert bench.remaining_length(128) == b"\x80\x01"
    assert bench.remaining_length(16_383) == b"\xff\x7f"
    assert bench.remaining_length(2_097_152) == b"\x80\x80\x80\x01"


def test_publish_packet_layout() -> None:
    packet = bench.publish_packet("a/b", b"{}", 7)
    assert packet == b"\x32\x09\x00\x03a/b\x00\x07{}"
    stream = bench.publish_stream([("t", b"x"), ("t", b"y")])
    assert stream.count(b"\x32") == 2 and b"\x00\x01x" in stream and b"\x00\x02y" in stream


def test_connect_packet_is_mqtt_311_clean_session() -> None:
    packet = bench.connect_packet("c1")
    assert packet[0] == 0x10 and packet[4:8] == b"MQTT" and packet[8] == 4 and packet[9] == 0x02
    assert packet.endswith(b"\x00\x02c1")


def test_partition_keeps_meters_whole_and_parts_small() -> None:
    messages = [
        (f"meters/m{m}/readings", orjson.dumps({"i": i})) for i in range(10) for m in range(7)
    ]
    parts = bench.partition_by_meter(messages, max_per_part=20)
    assert sum(len(p) for p in parts) == 70
    assert all(len(p) <= 20 for p in parts)
    owners: dict[str, int] = {}
    for index, part in enumerate(parts):
        for topic, _ in part:
            assert owners.setdefault(topic, index) == index
        # each meter's messages keep their order
        for topic in {t for t, _ in part}:
            order = [orjson.loads(p)["i"] for t, p in part if t == topic]
            assert order == sorted(order)


def test_broker_conf_has_the_limits_late_acks_need() -> None:
    conf = bench.bench_mosquitto_conf(18830)
    assert "listener 18830 127.0.0.1" in conf
    for line in ("max_inflight_messages 0", "max_queued_messages 0", "max_packet_size 262144"):
        assert line in conf.splitlines()
