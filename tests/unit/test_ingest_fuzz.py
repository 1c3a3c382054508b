"""Fuzzing the native decoder and the whole decode-check-store path (SQLite) with hostile payloads.

A few thousand examples each in CI (``MH_FUZZ_EXAMPLES`` raises it; scripts/fuzz.py runs
the same properties for hours). Every crasher found becomes a regression test in
tests/unit/test_hostile_payloads.py.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, insert, select

from hostile_payloads import hostile_messages, mangled, reading_payloads
from meterhub.ingest import batches
from meterhub.ingest.messages import Inbound, IngestRules
from meterhub.protocols import json_limits, native
from meterhub.readings.model import MEASUREMENT_FIELDS
from meterhub.readings.vee import ReadingLimits, check_reading
from meterhub.store import schema
from meterhub.store.db import make_engine
from meterhub.store.ingest_writes import IngestWriter, WriteResult
from meterhub.store.migrate import upgrade

EXAMPLES = int(os.environ.get("MH_FUZZ_EXAMPLES", "2000"))
NOW = datetime.now(UTC).replace(microsecond=0)
RULES = IngestRules("meters", ReadingLimits(), 256 * 1024, accept_unknown_meters=False)
fuzz = settings(
    max_examples=EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    deadline=None,
)


@fuzz
@given(st.one_of(reading_payloads(), mangled(reading_payloads()), st.binary(max_size=200)))
def test_the_native_decoder_returns_only_readings_the_store_can_take(payload: bytes) -> None:
    decoded = native.decode("M-1", payload)
    for reading in decoded.readings:
        assert reading.ts.tzinfo is UTC
        assert json_limits.MIN_YEAR <= reading.ts.year <= json_limits.MAX_YEAR + 1
        assert reading.seq is None or json_limits.INT64_MIN <= reading.seq <= json_limits.INT64_MAX
        for name in MEASUREMENT_FIELDS:
            value = getattr(reading, name)
            assert value is None or (type(value) is float and math.isfinite(value))
        assert not json_limits.exceeds_depth(reading.extra)
        assert not json_limits.contains_nul(reading.extra)
        orjson.dumps(reading.extra)  # re-encodable, as the store will do
        check_reading(reading, now=NOW, limits=RULES.limits)  # never raises
    for rejection in decoded.rejections:
        assert rejection.rejection.code


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path: Path = tmp_path_factory.mktemp("fuzz") / "meterhub.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    yield engine
    engine.dispose()


METERS = count()


def good(meter_id: str, minutes: int) -> Inbound:
    ts = NOW - timedelta(days=1) + timedelta(minutes=minutes)
    body = orjson.dumps({"ts": ts.isoformat(), "import_kwh": 100.0 + minutes})
    return Inbound(f"meters/{meter_id}/readings", body, NOW)


def carries_nothing(message: Inbound) -> bool:
    """An empty status (clears the retained copy) or an empty batch: nothing to keep."""
    if message.topic.endswith("/status") and not message.payload:
        return True
    try:
        document = orjson.loads(message.payload)
    except orjson.JSONDecodeError:
        return False
    return isinstance(document, dict) and document.get("readings") == []


@fuzz
@given(st.data())
def test_hostile_messages_between_good_ones_lose_nothing_and_stop_nothing(
    engine: Engine, data: st.DataObject
) -> None:
    meter_id = f"F-{next(METERS)}"
    with engine.begin() as conn:
        conn.execute(insert(schema.meters), [{"id": meter_id, "created_at": NOW}])
    hostile = data.draw(st.lists(hostile_messages("meters", meter_id), min_size=1, max_size=4))
    messages = [
        good(meter_id, 0),
        *(Inbound(topic, payload, NOW) for topic, payload in hostile),
        good(meter_id, 15),
    ]
    writer = IngestWriter(engine)
    handled = batches.handle(messages, RULES, lambda named: named & {meter_id})
    for item in handled:
        assert len(item) > 0 or carries_nothing(item.message), item.message

    with engine.connect() as conn:
        dead_before = conn.execute(
            select(func.count()).select_from(schema.dead_letters)
        ).scalar_one()
    total = WriteResult()

    def write(part: list[batches.Handled]) -> WriteResult:
        return writer.write(batches.merge(part, NOW, "fuzz"))

    batches.write_all(deque([handled]), write, total)

    with engine.connect() as conn:
        stored = set(
            conn.execute(
                select(schema.readings.c.import_kwh).where(schema.readings.c.meter_id == meter_id)
            ).scalars()
        )
        dead_after = conn.execute(
            select(func.count()).select_from(schema.dead_letters)
        ).scalar_one()
    assert {100.0, 115.0} <= stored, "the good readings around the hostile ones are stored"
    assert dead_after - dead_before == total.dead_letters
    assert total.dead_letters >= sum(len(item.outcome.dead_letters) for item in handled)
