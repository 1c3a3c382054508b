"""Batched writes: duplicates, conflicts and the fallback when COPY meets stored keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert, select

from conftest import count_rows
from meterhub.config import Settings
from meterhub.ingest.deriver import IntervalDeriver
from meterhub.readings.model import MEASUREMENT_FIELDS, Reading, ReadingBlock
from meterhub.store import schema
from meterhub.store.ingest_writes import IngestWriter, WriteBatch

pytestmark = pytest.mark.integration
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)


def batch(*readings: Reading) -> WriteBatch:
    return WriteBatch(received_at=datetime.now(UTC), readings=list(readings))


def reading(
    minutes: int, kwh: float, seq: int | None = None, voltage_v: float | None = None
) -> Reading:
    ts = T0 + timedelta(minutes=minutes)
    return Reading("M-1", ts, seq=seq, import_kwh=kwh, voltage_v=voltage_v)


@pytest.fixture
def writer(any_engine: Engine) -> IngestWriter:
    with any_engine.begin() as conn:
        conn.execute(insert(schema.meters), [{"id": "M-1", "created_at": T0}])
    return IngestWriter(any_engine)


def test_repeats_inside_one_batch_count_as_duplicates(writer: IngestWriter) -> None:
    result = writer.write(batch(reading(0, 1.0), reading(0, 1.0), reading(15, 2.0)))
    assert (result.inserted, result.duplicates, result.conflicts) == (2, 1, 0)


def test_a_resend_with_another_sequence_number_is_still_a_duplicate(writer: IngestWriter) -> None:
    writer.write(batch(reading(0, 1.0, seq=7)))
    result = writer.write(batch(reading(0, 1.0, seq=1)))
    assert (result.inserted, result.duplicates, result.conflicts) == (0, 1, 0)


def test_stored_keys_in_a_batch_fall_back_and_keep_the_new_rows(writer: IngestWriter) -> None:
    writer.write(batch(reading(0, 1.0), reading(15, 2.0)))
    # On PostgreSQL the direct COPY hits the stored keys and the batch goes through staging.
    result = writer.write(batch(reading(0, 1.0), reading(15, 2.5), reading(30, 3.0)))
    assert (result.inserted, result.duplicates, result.conflicts) == (1, 1, 1)
    assert count_rows(writer.engine, "readings") == 3
    assert count_rows(writer.engine, "events", "WHERE type = 'reading_conflict'") == 1


def test_a_zero_streak_raises_one_event_not_one_per_reading(writer: IngestWriter) -> None:
    # 12 hours of a register that does not move while the voltage is present
    flat = [reading(15 * i, 5.0, voltage_v=230.0) for i in range(49)]
    writer.write(batch(*flat))
    settings = Settings(zero_streak_minutes=360)
    IntervalDeriver(settings, writer.engine).drain()
    with writer.engine.connect() as conn:
        flagged = conn.execute(
            select(schema.readings.c.ts).where(schema.readings.c.flags.contains("zero_streak"))
        ).all()
    assert len(flagged) > 1
    assert count_rows(writer.engine, "events", "WHERE type = 'zero_streak'") == 1


def test_a_meter_silent_for_too_long_is_marked_offline_once(writer: IngestWriter) -> None:
    from sqlalchemy import update

    from meterhub.store.meters import mark_stale_meters_offline

    long_ago = datetime.now(UTC) - timedelta(hours=3)
    with writer.engine.begin() as conn:
        conn.execute(update(schema.meters).values(online=True, last_seen_at=long_ago))
    assert mark_stale_meters_offline(writer.engine, timedelta(hours=1)) == ["M-1"]
    assert mark_stale_meters_offline(writer.engine, timedelta(hours=1)) == []
    assert count_rows(writer.engine, "events", "WHERE type = 'offline'") == 1


def test_a_meter_heard_recently_stays_online(writer: IngestWriter) -> None:
    from sqlalchemy import update

    from meterhub.store.meters import mark_stale_meters_offline

    with writer.engine.begin() as conn:
        conn.execute(update(schema.meters).values(online=True, last_seen_at=datetime.now(UTC)))
    assert mark_stale_meters_offline(writer.engine, timedelta(hours=1)) == []


def block(start_minutes: int, kwhs: list[float]) -> ReadingBlock:
    stamps = [T0 + timedelta(minutes=start_minutes + 15 * i) for i in range(len(kwhs))]
    columns: dict[str, list[float | None]] = {
        name: [None] * len(kwhs) for name in MEASUREMENT_FIELDS
    }
    columns["import_kwh"] = list(kwhs)
    return ReadingBlock("M-1", stamps, [None] * len(kwhs), columns)


def test_clean_batches_are_stored_column_by_column(writer: IngestWriter) -> None:
    result = writer.write(
        WriteBatch(received_at=datetime.now(UTC), blocks=[block(0, [1.0, 2.0, 3.0])])
    )
    assert (result.inserted, result.duplicates) == (3, 0)
    with writer.engine.connect() as conn:
        stored = conn.execute(select(schema.readings.c.import_kwh).order_by("ts")).scalars().all()
    assert stored == [1.0, 2.0, 3.0]
    assert count_rows(writer.engine, "interval_work") == 1


def test_a_redelivered_clean_batch_is_a_duplicate(writer: IngestWriter) -> None:
    writer.write(WriteBatch(received_at=datetime.now(UTC), blocks=[block(0, [1.0, 2.0])]))
    again = writer.write(WriteBatch(received_at=datetime.now(UTC), blocks=[block(0, [1.0, 2.0])]))
    assert (again.inserted, again.duplicates, again.conflicts) == (0, 2, 0)


def test_a_key_both_in_a_clean_batch_and_a_single_reading_is_stored_once(
    writer: IngestWriter,
) -> None:
    batch = WriteBatch(
        received_at=datetime.now(UTC),
        readings=[reading(15, 2.0)],
        blocks=[block(0, [1.0, 2.0, 3.0])],
    )
    result = writer.write(batch)
    assert (result.inserted, result.duplicates, result.conflicts) == (3, 1, 0)
    assert count_rows(writer.engine, "readings") == 3


def test_the_same_clean_batch_twice_in_one_write_is_stored_once(writer: IngestWriter) -> None:
    twice = WriteBatch(
        received_at=datetime.now(UTC), blocks=[block(0, [1.0, 2.0]), block(0, [1.0, 2.0])]
    )
    result = writer.write(twice)
    assert (result.inserted, result.duplicates, result.conflicts) == (2, 2, 0)


def test_a_repeat_inside_one_unordered_clean_batch_is_found(writer: IngestWriter) -> None:
    repeated = block(0, [1.0, 2.0, 1.0])
    repeated.stamps[2] = repeated.stamps[0]  # same instant again, same value: a redelivery
    result = writer.write(WriteBatch(received_at=datetime.now(UTC), blocks=[repeated]))
    assert (result.inserted, result.duplicates) == (2, 1)
