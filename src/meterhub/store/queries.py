"""Read-side queries for the web app and the CLI: meters overview, usage, counters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from meterhub.readings.intervals import Interval
from meterhub.readings.model import Quality
from meterhub.readings.usage import UsageBucket, energy_by_period, energy_in_range
from meterhub.store import schema
from meterhub.store.interval_store import utc


@dataclass(frozen=True, slots=True)
class MeterOverview:
    id: str
    consumer_id: str | None
    transformer_id: str | None
    role: str
    status: str
    online: bool | None
    last_seen_at: datetime | None
    firmware: str | None
    latitude: float | None
    longitude: float | None
    last_reading_ts: datetime | None
    last_import_kwh: float | None
    last_power_w: float | None
    last_voltage_v: float | None


def ping(conn: Connection) -> None:
    """Raises unless the database answers a query."""
    conn.execute(select(1))


def meters_overview(conn: Connection, *, limit: int = 500, offset: int = 0) -> list[MeterOverview]:
    m = schema.meters
    r = schema.readings
    rows = conn.execute(select(m).order_by(m.c.id).limit(limit).offset(offset)).all()
    overview = []
    for row in rows:
        # One index seek per meter on (meter_id, ts): cheap, and portable across databases.
        last = conn.execute(
            select(r.c.ts, r.c.import_kwh, r.c.power_w, r.c.voltage_v)
            .where(r.c.meter_id == row.id)
            .order_by(r.c.ts.desc())
            .limit(1)
        ).first()
        overview.append(
            MeterOverview(
                id=row.id,
                consumer_id=row.consumer_id,
                transformer_id=row.transformer_id,
                role=row.role,
                status=row.status,
                online=row.online,
                last_seen_at=utc(row.last_seen_at) if row.last_seen_at else None,
                firmware=row.firmware,
                latitude=row.latitude,
                longitude=row.longitude,
                last_reading_ts=utc(last.ts) if last else None,
                last_import_kwh=last.import_kwh if last else None,
                last_power_w=last.power_w if last else None,
                last_voltage_v=last.voltage_v if last else None,
            )
        )
    return overview


def count_meters(conn: Connection) -> dict[str, int]:
    m = schema.meters
    total = conn.execute(select(func.count()).select_from(m)).scalar_one()
    online = conn.execute(
        select(func.count()).select_from(m).where(m.c.online.is_(True))
    ).scalar_one()
    return {"total": total, "online": online}


def load_intervals(
    conn: Connection, meter_id: str, start: datetime, end: datetime
) -> list[Interval]:
    i = schema.intervals
    rows = conn.execute(
        select(i)
        .where(i.c.meter_id == meter_id, i.c.start >= start, i.c.start < end)
        .order_by(i.c.start)
    ).all()
    return [
        Interval(
            row.meter_id,
            utc(row.start),
            row.seconds,
            row.import_kwh,
            row.export_kwh,
            Quality(row.quality),
        )
        for row in rows
    ]


def usage(
    conn: Connection,
    meter_id: str,
    start: datetime,
    end: datetime,
    *,
    period: Literal["hour", "day", "month"],
    zone: ZoneInfo,
) -> list[UsageBucket]:
    """Energy per calendar hour/day/month in the utility's zone over ``[start, end)``."""
    return energy_by_period(load_intervals(conn, meter_id, start, end), period=period, zone=zone)


def usage_in_range(
    conn: Connection, meter_id: str, start: datetime, end: datetime
) -> tuple[float, float]:
    # Intervals that start before ``start`` may still overlap it: widen by a day, pro-rate after.
    intervals = load_intervals(conn, meter_id, start - timedelta(days=1), end)
    return energy_in_range(intervals, start, end)


def ingest_counters(conn: Connection) -> list[dict[str, Any]]:
    c = schema.ingest_counters
    rows = conn.execute(
        select(c.c.outcome, c.c.reason, func.sum(c.c.count).label("total"))
        .group_by(c.c.outcome, c.c.reason)
        .order_by(c.c.outcome, c.c.reason)
    ).all()
    return [{"outcome": r.outcome, "reason": r.reason, "count": int(r.total)} for r in rows]
