"""Consumers, meters, tariffs and intervals for the bill-run and bill-document tests."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, insert

from meterhub.billing import service as billing
from meterhub.billing.core.tariff import load_tariff
from meterhub.store import schema

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tariffs"
NOW = datetime(2026, 3, 10, tzinfo=UTC)


def add_tariff(engine: Engine, name: str) -> str:
    tariff = load_tariff(EXAMPLES / f"{name}.yaml")
    with engine.begin() as conn:
        billing.save_tariff(conn, tariff, source_file=f"{name}.yaml", now=NOW)
    return tariff.id


def add_consumer(
    engine: Engine,
    consumer_id: str,
    *,
    tariff_id: str | None = None,
    amperes: int | None = 15,
    category: str | None = None,
    sanctioned_kw: float | None = 3.0,
) -> str:
    meter_id = f"m-{consumer_id}"
    with engine.begin() as conn:
        conn.execute(
            insert(schema.consumers).values(
                id=consumer_id,
                name=f"Consumer {consumer_id}",
                address="Ward 4, Lalitpur",
                tariff_category=category,
                created_at=NOW,
            )
        )
        conn.execute(
            insert(schema.meters).values(
                id=meter_id,
                consumer_id=consumer_id,
                sanctioned_load_kw=sanctioned_kw,
                created_at=NOW,
            )
        )
        if tariff_id is not None:
            billing.assign_tariff(
                conn, consumer_id, tariff_id, datetime(2020, 1, 1).date(), amperes=amperes
            )
    return meter_id


def add_intervals(
    engine: Engine,
    meter_id: str,
    start: datetime,
    end: datetime,
    kwh: float = 0.25,
    *,
    estimated: Iterable[datetime] = (),
    seconds: int = 900,
) -> int:
    flagged = set(estimated)
    rows = []
    at = start
    while at < end:
        rows.append(
            {
                "meter_id": meter_id,
                "start": at,
                "seconds": seconds,
                "import_kwh": kwh,
                "export_kwh": 0.0,
                "quality": "estimated" if at in flagged else "actual",
                "computed_at": NOW,
            }
        )
        at += timedelta(seconds=seconds)
    with engine.begin() as conn:
        conn.execute(insert(schema.intervals), rows)
    return len(rows)
