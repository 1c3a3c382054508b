"""A bill quote from a usage CSV: the adapter between files and the pure billing core.

The CSV has a header and one row per interval: ``start`` (ISO 8601 with a UTC offset),
``import_kwh`` and optionally ``export_kwh``. Interval length is the smallest step between
starts (15 minutes if there is only one row).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

from meterhub.billing.core.calculate import Bill, Supply, calculate_bill
from meterhub.billing.core.determinants import Determinants, compute_determinants
from meterhub.billing.core.tariff import Tariff
from meterhub.readings.intervals import Interval
from meterhub.readings.model import Quality


class UsageError(ValueError):
    """The usage file cannot be read as intervals (the message names the row and field)."""


def read_usage_csv(path: Path, meter_id: str = "quote") -> list[Interval]:
    with path.open(newline="", encoding="utf-8") as handle:
        return parse_usage_rows(csv.DictReader(handle), meter_id)


def parse_usage_rows(rows: Iterable[dict[str, str]], meter_id: str = "quote") -> list[Interval]:
    parsed: list[tuple[datetime, float, float]] = []
    for number, row in enumerate(rows, start=2):
        try:
            start = datetime.fromisoformat(row["start"].strip())
            import_kwh = float(row["import_kwh"])
            export_text = (row.get("export_kwh") or "").strip()
            export_kwh = float(export_text) if export_text else 0.0
        except KeyError as exc:
            raise UsageError(f"row {number}: no {exc.args[0]} column") from None
        except (ValueError, AttributeError) as exc:
            raise UsageError(f"row {number}: {exc}") from None
        if start.tzinfo is None:
            raise UsageError(f"row {number}: start needs a UTC offset")
        if not (import_kwh >= 0 and export_kwh >= 0):
            raise UsageError(f"row {number}: energy must be a non-negative number")
        parsed.append((start.astimezone(UTC), import_kwh, export_kwh))
    parsed.sort()
    steps = [b[0] - a[0] for a, b in pairwise(parsed) if b[0] > a[0]]
    seconds = int(min(steps, default=timedelta(minutes=15)).total_seconds())
    return [
        Interval(meter_id, start, seconds, import_kwh, export_kwh, Quality.ACTUAL)
        for start, import_kwh, export_kwh in parsed
    ]


def usage_dates(intervals: list[Interval], tariff: Tariff) -> tuple[date, date]:
    """The local dates the intervals cover: first day, and the day after the last."""
    if not intervals:
        raise UsageError("the usage file has no intervals")
    zone = tariff.zone
    first = min(interval.start for interval in intervals).astimezone(zone).date()
    last = max(interval.start for interval in intervals).astimezone(zone).date()
    return first, last + timedelta(days=1)


def quote(
    tariff: Tariff,
    intervals: list[Interval],
    supply: Supply,
    *,
    start: date | None = None,
    end: date | None = None,
    cycle_days: int | None = None,
) -> tuple[Determinants, Bill]:
    """Determinants and bill for ``[start, end)`` (default: the dates the usage covers)."""
    covered = usage_dates(intervals, tariff)
    start = start or covered[0]
    end = end or covered[1]
    determinants = compute_determinants(intervals, tariff, start, end)
    return determinants, calculate_bill(determinants, tariff, supply, cycle_days=cycle_days)
