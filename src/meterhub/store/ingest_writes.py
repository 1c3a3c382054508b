"""Batched writes of the ingest worker: readings, events, status, dead letters, counters.

One call = one transaction. Readings are inserted with "do nothing on conflict"; a key that was
already stored is then classified: the same values are a redelivery (a duplicate, nothing
changes), different values are a conflict, kept as a ``reading_conflict`` event and never
overwritten silently. On PostgreSQL readings go through COPY into a staging table.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby, islice, repeat
from operator import attrgetter, lt
from typing import Any

import orjson
import psycopg
from sqlalchemy import Connection, Engine, insert, select, update

from meterhub.readings.events import DeadLetter, MeterEvent, StatusUpdate, platform_event
from meterhub.readings.model import CONTRACT_FIELDS, Reading, ReadingBlock
from meterhub.store import schema
from meterhub.store.dialects import dialect_insert, greatest, is_postgres, least
from meterhub.store.events import insert_events
from meterhub.store.partitions import ensure_month_partitions, months_between

READING_COLUMNS = ("meter_id", "ts", "received_at", *CONTRACT_FIELDS, "extra", "quality", "flags")
_PG_TYPES = [
    "text",
    "timestamptz",
    "timestamptz",
    "int8",
    "float8",
    "float8",
    "json",
    "float8",
    "float8",
    "float8",
    "float8",
    "float8",
    "json",
    "text",
    "text",
]


@dataclass(slots=True)
class WriteBatch:
    received_at: datetime  # also marks which rows this batch inserted
    readings: list[Reading] = field(default_factory=list)
    # Clean batches, column by column; disjoint from ``readings``.
    blocks: list[ReadingBlock] = field(default_factory=list)
    events: list[MeterEvent] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    new_meters: set[str] = field(default_factory=set)
    seen_meters: set[str] = field(default_factory=set)
    worker_id: str = "meterhub-ingest"


@dataclass(slots=True)
class WriteResult:
    inserted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    events: int = 0
    dead_letters: int = 0


# C-level accessors: the write path touches every reading several times, and attrgetter with
# map() costs a fraction of a Python loop.
_KEY = attrgetter("meter_id", "ts")
_TS = attrgetter("ts")
_METER = attrgetter("meter_id")
_BY_TARIFF = attrgetter("import_kwh_by_tariff")
_EXTRA = attrgetter("extra")
# Readings without tariff registers or extra fields (nearly all of them) are copied with fewer
# columns, straight from their attributes; quality and flags take their defaults.
PLAIN_COLUMNS = (
    "meter_id", "ts", "seq", "import_kwh", "export_kwh", "power_w", "voltage_v", "current_a",
    "pf", "freq_hz", "received_at",
)  # fmt: skip
_PLAIN_ROW = attrgetter(*PLAIN_COLUMNS[:-1])
_PLAIN_TYPES = ["text", "timestamptz", "int8", *["float8"] * 7, "timestamptz"]


def _plain_block_rows(block: ReadingBlock, at: datetime) -> Iterator[tuple[Any, ...]]:
    """COPY rows in PLAIN_COLUMNS order, zipped straight from the block's columns."""
    imports, exports, powers, volts, amps, pfs, hertz = block.columns.values()
    return zip(
        repeat(block.meter_id), block.stamps, block.seqs, imports, exports, powers, volts, amps,
        pfs, hertz, repeat(at),
    )  # fmt: skip


def _keys_unique(readings: list[Reading], blocks: list[ReadingBlock]) -> bool:
    """No (meter, ts) twice in the batch. The usual batch is quick to prove: every block is a
    different meter that no single reading shares, and its stamps strictly increase (comparing
    datetimes of one tzinfo is cheap; hashing an aware datetime is not)."""
    meters = [block.meter_id for block in blocks]
    distinct = set(meters)
    if (
        len(distinct) == len(meters)
        and distinct.isdisjoint(map(_METER, readings))
        and len(set(map(_KEY, readings))) == len(readings)
        and all(all(map(lt, b.stamps, islice(b.stamps, 1, None))) for b in blocks)
    ):
        return True
    keys = list(map(_KEY, readings))
    for block in blocks:
        keys.extend(zip(repeat(block.meter_id), block.stamps))
    return len(set(keys)) == len(keys)


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _row(reading: Reading, received_at: datetime) -> tuple[Any, ...]:
    return (
        reading.meter_id,
        reading.ts,
        received_at,
        reading.seq,
        reading.import_kwh,
        reading.export_kwh,
        _json(reading.import_kwh_by_tariff),
        reading.power_w,
        reading.voltage_v,
        reading.current_a,
        reading.pf,
        reading.freq_hz,
        _json(reading.extra or None),
        "actual",
        "",
    )


def _values(reading: Reading) -> dict[str, Any]:
    return {name: getattr(reading, name) for name in CONTRACT_FIELDS}


def _measurements(values: dict[str, Any]) -> dict[str, Any]:
    """What decides duplicate versus conflict: the measurements, not the sequence counter
    (a meter that resends after a reboot may number the same reading differently)."""
    return {k: v for k, v in values.items() if k != "seq"}


def _stored_values(row: Any) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in CONTRACT_FIELDS}
    by_tariff = values["import_kwh_by_tariff"]
    if isinstance(by_tariff, str):
        values["import_kwh_by_tariff"] = orjson.loads(by_tariff)
    return values


def conflict_event(reading: Reading, stored: dict[str, Any], at: datetime) -> MeterEvent:
    received = _values(reading)
    payload = {"ts": reading.ts.isoformat(), "stored": stored, "received": received}
    # Keyed by what was received: a second, different conflicting value is a second event.
    body = orjson.dumps(received, option=orjson.OPT_SORT_KEYS)
    return platform_event(
        reading.meter_id, reading.ts, "reading_conflict", payload, received_at=at, key=body
    )


def _dedupe(
    readings: Sequence[Reading], at: datetime
) -> tuple[list[Reading], int, list[MeterEvent]]:
    """Collapse repeats of a key inside one batch: the first arrival is kept."""
    keys = list(map(_KEY, readings))
    if len(set(keys)) == len(keys):
        return list(readings), 0, []
    first: dict[tuple[str, datetime], Reading] = {}
    duplicates = 0
    conflicts: list[MeterEvent] = []
    for reading in readings:
        key = (reading.meter_id, reading.ts)
        kept = first.get(key)
        if kept is None:
            first[key] = reading
        elif kept.same_values(reading):
            duplicates += 1
        else:
            conflicts.append(conflict_event(reading, _values(kept), at))
    return list(first.values()), duplicates, conflicts


class IngestWriter:
    """Writes batches to one database; keeps the cache of partitions it has ensured."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = is_postgres(engine)
        self._months: set[datetime] = set()

    def write(self, batch: WriteBatch) -> WriteResult:
        result = WriteResult()
        readings, blocks = batch.readings, batch.blocks
        if blocks and (not self.postgres or not _keys_unique(readings, blocks)):
            # Repeats to sort out, or SQLite: the reading-by-reading path does it all.
            readings = readings + [r for block in blocks for r in block.readings()]
            blocks = []
        unique, duplicates, conflicts = _dedupe(readings, batch.received_at)
        result.duplicates = duplicates
        with self.engine.begin() as conn:
            if batch.new_meters:
                self._register_meters(conn, batch.new_meters, batch.received_at)
            if unique or blocks:
                inserted, more_dupes, more_conflicts = self._insert_readings(
                    conn, unique, blocks, batch
                )
                result.inserted = inserted
                result.duplicates += more_dupes
                conflicts.extend(more_conflicts)
                self._queue_interval_work(conn, unique, blocks, batch.received_at)
            result.conflicts = len(conflicts)
            events = [*batch.events, *conflicts, *self._status(conn, batch)]
            events.extend(self._seen(conn, batch))
            result.events = insert_events(conn, events)
            if batch.dead_letters:
                conn.execute(
                    insert(schema.dead_letters), [_dead_row(d) for d in batch.dead_letters]
                )
                result.dead_letters = len(batch.dead_letters)
            add_counters(conn, batch.worker_id, counter_deltas(batch, result), batch.received_at)
        return result

    # -- readings -------------------------------------------------------------------------

    def _insert_readings(
        self,
        conn: Connection,
        readings: list[Reading],
        blocks: list[ReadingBlock],
        batch: WriteBatch,
    ) -> tuple[int, int, list[MeterEvent]]:
        if self.postgres:
            inserted = self._copy_readings(conn, readings, blocks, batch)
        else:
            stmt = dialect_insert(conn, schema.readings).on_conflict_do_nothing()
            rows = [
                dict(zip(READING_COLUMNS, _row(r, batch.received_at), strict=True))
                for r in readings
            ]
            for row in rows:
                for name in ("import_kwh_by_tariff", "extra"):
                    if row[name] is not None:
                        row[name] = orjson.loads(row[name])
            inserted = conn.execute(stmt, rows).rowcount
        total = len(readings) + sum(map(len, blocks))
        if inserted == total:
            return inserted, 0, []
        everything = readings + [r for block in blocks for r in block.readings()]
        return (inserted, *self._classify_existing(conn, everything, batch.received_at))

    def _copy_readings(
        self,
        conn: Connection,
        readings: list[Reading],
        blocks: list[ReadingBlock],
        batch: WriteBatch,
    ) -> int:
        lows = [min(block.stamps) for block in blocks]
        highs = [max(block.stamps) for block in blocks]
        if readings:
            stamps = list(map(_TS, readings))
            lows.append(min(stamps))
            highs.append(max(stamps))
        months = months_between(min(lows), max(highs))
        if not months <= self._months:
            ensure_month_partitions(conn, "readings", months - self._months)
            ensure_month_partitions(conn, "intervals", months - self._months)
            self._months |= months
        raw = conn.connection.dbapi_connection
        assert isinstance(raw, psycopg.Connection)
        at = batch.received_at
        rows: list[tuple[Any, ...]]
        if not any(map(_EXTRA, readings)) and all(v is None for v in map(_BY_TARIFF, readings)):
            rows = list(map(tuple.__add__, map(_PLAIN_ROW, readings), repeat((at,))))
            for block in blocks:
                rows.extend(_plain_block_rows(block, at))
            names, types = PLAIN_COLUMNS, _PLAIN_TYPES
        else:
            rows = [_row(reading, at) for reading in readings]
            for block in blocks:
                rows.extend(_row(reading, at) for reading in block.readings())
            names, types = READING_COLUMNS, _PG_TYPES
        columns = ", ".join(f'"{c}"' for c in names)
        with raw.cursor() as cur:
            # Fast path: COPY straight into the table, about twice the rate of staging + INSERT.
            # Keys already stored (a redelivery after a crash) abort the COPY; then the batch
            # goes through a staging table and ON CONFLICT DO NOTHING instead.
            cur.execute("SAVEPOINT direct_copy")
            try:
                self._copy(cur, "readings", columns, types, rows)
            except psycopg.errors.UniqueViolation:
                cur.execute("ROLLBACK TO SAVEPOINT direct_copy")
            else:
                cur.execute("RELEASE SAVEPOINT direct_copy")
                return len(rows)
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS staging_readings "
                "(LIKE readings INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            self._copy(cur, "staging_readings", columns, types, rows)
            cur.execute(
                f"INSERT INTO readings ({columns}) SELECT {columns} FROM staging_readings "
                "ON CONFLICT DO NOTHING"
            )
            # The staging rows vanish at commit (ON COMMIT DELETE ROWS).
            return cur.rowcount

    @staticmethod
    def _copy(
        cur: psycopg.Cursor[Any],
        table: str,
        columns: str,
        types: list[str],
        rows: list[tuple[Any, ...]],
    ) -> None:
        with cur.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)

    def _classify_existing(
        self, conn: Connection, readings: list[Reading], at: datetime
    ) -> tuple[int, list[MeterEvent]]:
        """Rows not inserted hit an existing key: a redelivery (same values) or a conflict."""
        by_key = {(r.meter_id, r.ts): r for r in readings}
        table = schema.readings
        duplicates = 0
        conflicts: list[MeterEvent] = []
        meter_ids = sorted({r.meter_id for r in readings})
        low = min(r.ts for r in readings)
        high = max(r.ts for r in readings)
        rows = conn.execute(
            select(table).where(
                table.c.meter_id.in_(meter_ids),
                table.c.ts.between(low, high),
                table.c.received_at != at,
            )
        )
        for row in rows:
            ts = row.ts if row.ts.tzinfo else row.ts.replace(tzinfo=low.tzinfo)
            reading = by_key.get((row.meter_id, ts))
            if reading is None:
                continue
            stored = _stored_values(row)
            if _measurements(stored) == _measurements(_values(reading)):
                duplicates += 1
            else:
                conflicts.append(conflict_event(reading, stored, at))
        return duplicates, conflicts

    def _queue_interval_work(
        self,
        conn: Connection,
        readings: list[Reading],
        blocks: list[ReadingBlock],
        at: datetime,
    ) -> None:
        spans: dict[str, tuple[datetime, datetime]] = {}

        def widen(meter_id: str, low: datetime, high: datetime) -> None:
            known = spans.get(meter_id)
            if known is not None:
                low, high = min(low, known[0]), max(high, known[1])
            spans[meter_id] = (low, high)

        # A message's readings are one meter's and arrive together: group runs, not readings.
        for meter_id, run in groupby(readings, key=_METER):
            stamps = list(map(_TS, run))
            widen(meter_id, min(stamps), max(stamps))
        for block in blocks:
            widen(block.meter_id, min(block.stamps), max(block.stamps))
        rows = [
            {"meter_id": m, "from_ts": a, "to_ts": b, "queued_at": at}
            for m, (a, b) in spans.items()
        ]
        work = schema.interval_work
        stmt = dialect_insert(conn, work)
        stmt = stmt.on_conflict_do_update(
            index_elements=["meter_id"],
            set_={
                "from_ts": least(conn, work.c.from_ts, stmt.excluded.from_ts),
                "to_ts": greatest(conn, work.c.to_ts, stmt.excluded.to_ts),
            },
        )
        conn.execute(stmt, rows)

    # -- meters, status, events ------------------------------------------------------------

    def _register_meters(self, conn: Connection, meter_ids: Iterable[str], at: datetime) -> None:
        stmt = dialect_insert(conn, schema.meters).on_conflict_do_nothing()
        conn.execute(
            stmt,
            [{"id": m, "status": "auto_registered", "created_at": at} for m in sorted(meter_ids)],
        )

    def _status(self, conn: Connection, batch: WriteBatch) -> list[MeterEvent]:
        events: list[MeterEvent] = []
        meters = schema.meters
        for status in batch.statuses:
            previous = conn.execute(
                select(meters.c.online).where(meters.c.id == status.meter_id)
            ).scalar_one_or_none()
            values: dict[str, Any] = {
                "status_payload": status.payload,
                "last_seen_at": status.received_at,
            }
            if status.firmware is not None:
                values["firmware"] = status.firmware
            if status.online is not None:
                values["online"] = status.online
                if previous is not status.online:
                    values["online_changed_at"] = status.received_at
                    events.append(_online_event(status.meter_id, status.online, status.received_at))
            conn.execute(update(meters).where(meters.c.id == status.meter_id).values(**values))
        return events

    def _seen(self, conn: Connection, batch: WriteBatch) -> list[MeterEvent]:
        """Readings prove a meter is alive: refresh last-seen and flip offline meters online."""
        seen = sorted(
            {r.meter_id for r in batch.readings}
            | {block.meter_id for block in batch.blocks}
            | batch.seen_meters
        )
        if not seen:
            return []
        meters = schema.meters
        at = batch.received_at
        came_back = (
            conn.execute(
                update(meters)
                .where(meters.c.id.in_(seen), meters.c.online.is_not(True))
                .values(online=True, online_changed_at=at, last_seen_at=at)
                .returning(meters.c.id)
            )
            .scalars()
            .all()
        )
        conn.execute(update(meters).where(meters.c.id.in_(seen)).values(last_seen_at=at))
        return [_online_event(m, True, at) for m in came_back]


def counter_deltas(batch: WriteBatch, result: WriteResult) -> dict[tuple[str, str], int]:
    deltas: dict[tuple[str, str], int] = {}
    for outcome, reason, count in (
        ("accepted", "reading", result.inserted),
        ("accepted", "event", len(batch.events)),
        ("accepted", "status", len(batch.statuses)),
        ("duplicate", "reading", result.duplicates),
        ("conflict", "reading", result.conflicts),
    ):
        if count:
            deltas[(outcome, reason)] = count
    for dead in batch.dead_letters:
        key = ("rejected", dead.reason_code)
        deltas[key] = deltas.get(key, 0) + 1
    return deltas


def _online_event(meter_id: str, online: bool, at: datetime) -> MeterEvent:
    return platform_event(meter_id, at, "online" if online else "offline", {}, received_at=at)


def _dead_row(dead: DeadLetter) -> dict[str, Any]:
    return {
        "received_at": dead.received_at,
        "topic": dead.topic,
        "meter_id": dead.meter_id,
        "payload": dead.payload,
        "reason_code": dead.reason_code,
        "message": dead.message,
    }


def add_counters(
    conn: Connection, worker_id: str, deltas: dict[tuple[str, str], int], at: datetime
) -> None:
    if not deltas:
        return
    table = schema.ingest_counters
    stmt = dialect_insert(conn, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=["worker_id", "outcome", "reason"],
        set_={
            "count": table.c.count + stmt.excluded["count"],
            "updated_at": stmt.excluded.updated_at,
        },
    )
    conn.execute(
        stmt,
        [
            {"worker_id": worker_id, "outcome": o, "reason": r, "count": n, "updated_at": at}
            for (o, r), n in sorted(deltas.items())
        ],
    )
