"""SQL over intervals for bills: energy sums for a bill's comparisons with earlier periods."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, func, select

from meterhub.store import schema


def energy_between(
    conn: Connection, meter_ids: Sequence[str], start: datetime, end: datetime
) -> dict[str, tuple[float, int]]:
    """(kWh imported, interval count) per meter over ``[start, end)``, for comparisons."""
    i = schema.intervals
    rows = conn.execute(
        select(i.c.meter_id, func.sum(i.c.import_kwh), func.count())
        .where(i.c.meter_id.in_(meter_ids), i.c.start >= start, i.c.start < end)
        .group_by(i.c.meter_id)
    ).all()
    return {row[0]: (float(row[1] or 0.0), int(row[2])) for row in rows}
