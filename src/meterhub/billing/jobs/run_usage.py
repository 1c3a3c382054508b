"""A bill run's usage per meter, read from the store: the packed query on PostgreSQL summed by
``SlotTable``, and each meter it cannot place (or every meter, on SQLite) interval by interval
through ``usage_from_intervals`` (both in ``billing.core.period_usage``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from sqlalchemy import Connection

from meterhub.billing.core.determinants import period_bounds_utc
from meterhub.billing.core.period_usage import (
    SLOT_SECONDS,
    PeriodUsage,
    SlotTable,
    usage_from_intervals,
)
from meterhub.billing.core.tariff import Tariff
from meterhub.store import bill_usage
from meterhub.store.queries import load_intervals


def usage_by_meter(
    conn: Connection, tariff: Tariff, meter_ids: Sequence[str], start: date, end: date
) -> dict[str, PeriodUsage]:
    """Usage of ``[start, end)`` for each meter that has intervals in it."""
    if not meter_ids:
        return {}
    first, last = period_bounds_utc(start, end, tariff.zone)
    rows = bill_usage.packed_intervals(conn, meter_ids, first, last)
    if rows is None:  # a database that cannot pack them: the pure way
        return _usage_one_by_one(conn, tariff, meter_ids, start, end)
    slots = SlotTable(tariff, start, end)
    usage: dict[str, PeriodUsage] = {}
    unplaced = []
    for meter_id, shortest, longest, starts, energy, export, exported, estimated in rows:
        found = None
        if shortest == longest and shortest % SLOT_SECONDS == 0 and exported is not False:
            found = slots.usage(shortest, starts, energy, int(export or 0), estimated or [])
        if found is None:
            unplaced.append(meter_id)
        else:
            usage[meter_id] = found
    if unplaced:
        usage.update(_usage_one_by_one(conn, tariff, unplaced, start, end))
    return usage


def _usage_one_by_one(
    conn: Connection, tariff: Tariff, meter_ids: Iterable[str], start: date, end: date
) -> dict[str, PeriodUsage]:
    first, last = period_bounds_utc(start, end, tariff.zone)
    found = {}
    for meter_id in meter_ids:
        intervals = load_intervals(conn, meter_id, first, last)
        if intervals:
            found[meter_id] = usage_from_intervals(intervals, tariff, start, end)
    return found
