"""Monthly partitions of readings and intervals on PostgreSQL (UTC months, plus a DEFAULT)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, insert, text

from conftest import count_rows
from meterhub.readings.model import Reading
from meterhub.store import schema
from meterhub.store.ingest_writes import IngestWriter, WriteBatch
from meterhub.store.partitions import ensure_month_partitions

pytestmark = pytest.mark.integration

RECEIVED = datetime(2026, 12, 1, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def partitions_of(conn: Connection, table: str) -> set[str]:
    return set(
        conn.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = CAST(:t AS regclass)"
            ),
            {"t": table},
        ).scalars()
    )


def where_readings_are(conn: Connection) -> dict[datetime, str]:
    """Each reading's timestamp -> the partition that physically holds it."""
    rows = conn.execute(text("SELECT ts, tableoid::regclass::text AS part FROM readings"))
    return {row.ts: row.part for row in rows}


def register(engine: Engine, *meter_ids: str) -> None:
    with engine.begin() as conn:
        conn.execute(insert(schema.meters), [{"id": m, "created_at": RECEIVED} for m in meter_ids])


def write(engine: Engine, *stamps: datetime, writer: IngestWriter | None = None) -> None:
    readings = [Reading("M-1", ts, import_kwh=100.0 + n) for n, ts in enumerate(stamps)]
    (writer or IngestWriter(engine)).write(WriteBatch(received_at=RECEIVED, readings=readings))


def test_a_fresh_database_has_only_the_default_partitions(pg_engine: Engine) -> None:
    with pg_engine.connect() as conn:
        assert partitions_of(conn, "readings") == {"readings_default"}
        assert partitions_of(conn, "intervals") == {"intervals_default"}


def test_writing_two_months_creates_both_monthly_partitions(pg_engine: Engine) -> None:
    register(pg_engine, "M-1")
    # 23:45 UTC on Oct 31 and 00:00 UTC on Nov 1: two UTC months, one batch.
    october, november = utc(2026, 10, 31, 23, 45), utc(2026, 11, 1, 0, 0)
    write(pg_engine, october, november)
    with pg_engine.connect() as conn:
        assert partitions_of(conn, "readings") == {
            "readings_default",
            "readings_y2026m10",
            "readings_y2026m11",
        }
        # Intervals get the same months, ready for the deriver.
        assert partitions_of(conn, "intervals") == {
            "intervals_default",
            "intervals_y2026m10",
            "intervals_y2026m11",
        }
        assert where_readings_are(conn) == {
            october: "readings_y2026m10",
            november: "readings_y2026m11",
        }
    assert count_rows(pg_engine, "readings_default") == 0


def test_partition_bounds_are_utc_month_boundaries(pg_engine: Engine) -> None:
    register(pg_engine, "M-1")
    write(pg_engine, utc(2026, 11, 15))
    with pg_engine.connect() as conn:
        conn.execute(text("SET TIME ZONE 'UTC'"))
        bound = conn.execute(
            text(
                "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c "
                "WHERE c.relname = 'readings_y2026m11'"
            )
        ).scalar_one()
    assert bound == "FOR VALUES FROM ('2026-11-01 00:00:00+00') TO ('2026-12-01 00:00:00+00')"


def test_later_batches_for_the_same_months_reuse_the_partitions(pg_engine: Engine) -> None:
    register(pg_engine, "M-1")
    writer = IngestWriter(pg_engine)
    write(pg_engine, utc(2026, 11, 1), writer=writer)
    # A second writer (another worker process) finds the partition already there.
    write(pg_engine, utc(2026, 11, 2), utc(2026, 11, 3))
    with pg_engine.connect() as conn:
        assert partitions_of(conn, "readings") == {"readings_default", "readings_y2026m11"}
        assert set(where_readings_are(conn).values()) == {"readings_y2026m11"}
    assert count_rows(pg_engine, "readings") == 3


def test_a_reading_in_the_default_partition_moves_when_its_month_is_created(
    pg_engine: Engine,
) -> None:
    january = utc(2027, 1, 15, 12, 0)
    with pg_engine.begin() as conn:
        # No partition for January 2027 yet: a plain insert lands in the default partition.
        conn.execute(
            insert(schema.readings),
            [{"meter_id": "M-1", "ts": january, "received_at": RECEIVED, "import_kwh": 42.0}],
        )
        assert where_readings_are(conn) == {january: "readings_default"}
    with pg_engine.begin() as conn:
        ensure_month_partitions(conn, "readings", {utc(2027, 1, 1)})
    with pg_engine.connect() as conn:
        assert "readings_y2027m01" in partitions_of(conn, "readings")
        assert where_readings_are(conn) == {january: "readings_y2027m01"}
        assert conn.execute(text("SELECT import_kwh FROM readings")).scalar_one() == 42.0
    assert count_rows(pg_engine, "readings_default") == 0


def test_only_the_new_months_rows_leave_the_default_partition(pg_engine: Engine) -> None:
    january, february = utc(2027, 1, 31, 23, 59), utc(2027, 2, 1, 0, 0)
    with pg_engine.begin() as conn:
        conn.execute(
            insert(schema.readings),
            [
                {"meter_id": "M-1", "ts": ts, "received_at": RECEIVED, "import_kwh": 1.0}
                for ts in (january, february)
            ],
        )
        ensure_month_partitions(conn, "readings", {utc(2027, 1, 1)})
    with pg_engine.connect() as conn:
        assert where_readings_are(conn) == {
            january: "readings_y2027m01",
            february: "readings_default",  # [Jan 1, Feb 1): February's first instant stays
        }


def test_ensuring_an_existing_partition_changes_nothing(pg_engine: Engine) -> None:
    register(pg_engine, "M-1")
    write(pg_engine, utc(2026, 11, 1))
    with pg_engine.begin() as conn:
        ensure_month_partitions(conn, "readings", {utc(2026, 11, 1)})
        ensure_month_partitions(conn, "readings", {utc(2026, 11, 1)})
    with pg_engine.connect() as conn:
        assert partitions_of(conn, "readings") == {"readings_default", "readings_y2026m11"}
    assert count_rows(pg_engine, "readings") == 1


def test_the_writer_moves_stranded_rows_and_still_sees_redeliveries(pg_engine: Engine) -> None:
    register(pg_engine, "M-1")
    stranded = utc(2027, 3, 10)
    with pg_engine.begin() as conn:
        conn.execute(
            insert(schema.readings),
            [{"meter_id": "M-1", "ts": stranded, "received_at": RECEIVED, "import_kwh": 100.0}],
        )
    # The writer's batch for March 2027 creates the partition, moving the stranded row; the
    # same reading again (same key, same 100.0 kWh) is then a duplicate, not a new row.
    readings = [Reading("M-1", stranded, import_kwh=100.0)]
    later = RECEIVED + timedelta(minutes=1)
    result = IngestWriter(pg_engine).write(WriteBatch(received_at=later, readings=readings))
    assert (result.inserted, result.duplicates, result.conflicts) == (0, 1, 0)
    with pg_engine.connect() as conn:
        assert where_readings_are(conn) == {stranded: "readings_y2027m03"}


def test_two_writers_crossing_into_a_new_month_together_both_store_everything(
    pg_engine: Engine,
) -> None:
    with pg_engine.begin() as conn:
        conn.execute(
            insert(schema.meters),
            [{"id": f"M-{n}", "created_at": RECEIVED} for n in range(2)],
        )
    boundary = utc(2026, 12, 1)
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def write(meter: str) -> None:
        writer = IngestWriter(pg_engine)
        start.wait(10)
        for k in range(-3, 4):
            reading = Reading(meter, boundary + timedelta(minutes=15 * k), import_kwh=10.0 + k)
            try:
                writer.write(WriteBatch(received_at=RECEIVED, readings=[reading]))
            except Exception as exc:
                errors.append(exc)

    threads = [threading.Thread(target=write, args=(f"M-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert count_rows(pg_engine, "readings") == 14
    assert count_rows(pg_engine, "readings_default") == 0
