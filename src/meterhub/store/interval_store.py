"""Recomputing intervals: claim queued work, load readings around it, write the results.

Readings are the source of truth; intervals are derived from them and recomputed over a window
whenever readings arrive inside or next to it (late or out-of-order data included). Work is
claimed, computed and written in one transaction per chunk, so a crash leaves the work queued.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, and_, bindparam, delete, func, insert, select, update

from meterhub.readings.events import MeterEvent, platform_event
from meterhub.readings.model import Reading
from meterhub.readings.vee import Assessment, MeterProfile
from meterhub.store import schema
from meterhub.store.dialects import skip_locked

# How much history before the new data the VEE rules see: enough for a zero streak (hours) and
# to find the last trusted register before a glitch.
CONTEXT = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Work:
    meter_id: str
    from_ts: datetime
    to_ts: datetime


@dataclass(frozen=True, slots=True)
class Window:
    """Readings of one meter around queued work; ``first_new`` indexes the first reading the
    assessment may rewrite (earlier ones are context)."""

    meter_id: str
    readings: list[Reading]
    stored_quality: list[tuple[str, str]]
    first_new: int


def utc(ts: datetime) -> datetime:
    """SQLite returns naive datetimes; everything stored is UTC."""
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def claim_work(conn: Connection, limit: int) -> list[Work]:
    table = schema.interval_work
    query = select(table.c.meter_id, table.c.from_ts, table.c.to_ts).order_by(table.c.queued_at)
    rows: Sequence[Any] = conn.execute(skip_locked(conn, query.limit(limit))).all()
    if rows:
        conn.execute(delete(table).where(table.c.meter_id.in_([r.meter_id for r in rows])))
    return [Work(r.meter_id, utc(r.from_ts), utc(r.to_ts)) for r in rows]


def _reading(row: Any) -> Reading:
    by_tariff = row.import_kwh_by_tariff
    if isinstance(by_tariff, str):
        by_tariff = orjson.loads(by_tariff)
    return Reading(
        meter_id=row.meter_id,
        ts=utc(row.ts),
        seq=row.seq,
        import_kwh=row.import_kwh,
        export_kwh=row.export_kwh,
        import_kwh_by_tariff=by_tariff,
        power_w=row.power_w,
        voltage_v=row.voltage_v,
        current_a=row.current_a,
        pf=row.pf,
        freq_hz=row.freq_hz,
    )


def load_window(conn: Connection, work: Work) -> Window:
    r = schema.readings
    next_ts = conn.execute(
        select(func.min(r.c.ts)).where(r.c.meter_id == work.meter_id, r.c.ts > work.to_ts)
    ).scalar()
    upper = utc(next_ts) if next_ts is not None else work.to_ts
    rows = conn.execute(
        select(r)
        .where(r.c.meter_id == work.meter_id, r.c.ts >= work.from_ts - CONTEXT, r.c.ts <= upper)
        .order_by(r.c.ts)
    ).all()
    readings = [_reading(row) for row in rows]
    first_new = next((i for i, x in enumerate(readings) if x.ts >= work.from_ts), len(readings))
    return Window(
        meter_id=work.meter_id,
        readings=readings,
        stored_quality=[(row.quality, row.flags) for row in rows],
        first_new=first_new,
    )


def load_profiles(conn: Connection, meter_ids: Sequence[str]) -> dict[str, MeterProfile]:
    m = schema.meters
    rows = conn.execute(
        select(m.c.id, m.c.sanctioned_load_kw, m.c.phase, m.c.register_max_kwh).where(
            m.c.id.in_(list(meter_ids))
        )
    ).all()
    profiles = {
        row.id: MeterProfile(row.id, row.sanctioned_load_kw, row.phase or 1, row.register_max_kwh)
        for row in rows
    }
    for meter_id in meter_ids:
        profiles.setdefault(meter_id, MeterProfile(meter_id, None, 1, None))
    return profiles


def save_assessments(
    conn: Connection, window: Window, assessments: Sequence[Assessment], at: datetime
) -> list[MeterEvent]:
    """Write changed quality flags back to the readings; return VEE events for new findings."""
    changes: list[dict[str, Any]] = []
    events: list[MeterEvent] = []
    for index in range(window.first_new, len(window.readings)):
        reading = window.readings[index]
        assessment = assessments[index]
        flags = ",".join(assessment.flags)
        stored_quality, stored_flags = window.stored_quality[index]
        if (assessment.quality.value, flags) == (stored_quality, stored_flags):
            continue
        changes.append(
            {
                "m": reading.meter_id,
                "t": reading.ts,
                "quality": assessment.quality.value,
                "flags": flags,
            }
        )
        old = set(stored_flags.split(",")) if stored_flags else set()
        previous = assessments[index - 1].flags if index > 0 else ()
        for flag in assessment.flags:
            # A flag that persists over many readings (a zero streak) is one finding.
            if flag not in old and flag not in previous:
                events.append(_vee_event(reading, flag, assessment, at))
    if changes:
        r = schema.readings
        conn.execute(
            update(r)
            .where(and_(r.c.meter_id == bindparam("m"), r.c.ts == bindparam("t")))
            .values(quality=bindparam("quality"), flags=bindparam("flags")),
            changes,
        )
    return events


def _vee_event(reading: Reading, flag: str, assessment: Assessment, at: datetime) -> MeterEvent:
    payload: dict[str, Any] = {
        "quality": assessment.quality.value,
        "import_kwh": reading.import_kwh,
    }
    if assessment.step is not None:
        payload["step"] = assessment.step.kind
        payload["since"] = assessment.step.since.isoformat()
    return platform_event(reading.meter_id, reading.ts, flag, payload, received_at=at, key=b"vee")


def replace_intervals(
    conn: Connection, meter_id: str, start: datetime, end: datetime, rows: list[dict[str, Any]]
) -> None:
    i = schema.intervals
    conn.execute(delete(i).where(i.c.meter_id == meter_id, i.c.start >= start, i.c.start < end))
    if rows:
        conn.execute(insert(i), rows)


def process_queued(
    engine: Engine,
    compute: Callable[[Connection, list[Work], datetime], None],
    *,
    chunk: int = 200,
) -> int:
    """Claim up to ``chunk`` queued meters and run ``compute`` on them in one transaction."""
    with engine.begin() as conn:
        work = claim_work(conn, chunk)
        if work:
            compute(conn, work, datetime.now(UTC))
    return len(work)
