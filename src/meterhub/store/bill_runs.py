"""SQL for bill runs: one row per period, its status and counts. No commits here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from meterhub.store import bills
from meterhub.store.schema_billing import bill_runs


def start_run(conn: Connection, period: str, start: date, end: date, now: datetime) -> None:
    values = {
        "period_start": start,
        "period_end": end,
        "status": "running",
        "started_at": now,
        "finished_at": None,
        "skipped": 0,
        "failed": 0,
        "errors": None,
    }
    changed = conn.execute(update(bill_runs).where(bill_runs.c.period == period).values(**values))
    if changed.rowcount == 0:
        conn.execute(insert(bill_runs).values(period=period, **values))


def record_progress(conn: Connection, period: str, *, issued: int) -> None:
    conn.execute(
        update(bill_runs)
        .where(bill_runs.c.period == period)
        .values(issued=bill_runs.c.issued + issued)
    )


def finish_run(
    conn: Connection,
    period: str,
    *,
    status: str,
    consumers: int,
    skipped: int,
    errors: Sequence[Mapping[str, str]],
    now: datetime,
) -> None:
    """The run's outcome; ``issued`` counts every bill of the period, whichever run made it."""
    start = conn.execute(
        select(bill_runs.c.period_start).where(bill_runs.c.period == period)
    ).scalar_one()
    conn.execute(
        update(bill_runs)
        .where(bill_runs.c.period == period)
        .values(
            status=status,
            finished_at=now,
            consumers=consumers,
            issued=bills.count_of_period(conn, start),
            skipped=skipped,
            failed=len(errors),
            errors=list(errors),
        )
    )


def run_status(conn: Connection, period: str) -> dict[str, Any] | None:
    row = conn.execute(select(bill_runs).where(bill_runs.c.period == period)).mappings().first()
    return None if row is None else dict(row)
