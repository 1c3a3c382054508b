"""A bill run's usage per meter: determinants, daily kWh for the chart, dates with estimates.

Two ways to the same numbers. ``usage_from_intervals`` is the pure one (``compute_determinants``
over ``Interval`` objects): SQLite, and any meter whose intervals the fast way cannot place.
On PostgreSQL, ``usage_by_meter`` lets the database do the per-interval work for a whole chunk
of meters: Python classifies each 15-minute slot of the period once (season, time-of-use window,
day type, local day, local half hour and hour), passes the slots as arrays, and PostgreSQL
rounds and sums the intervals by slot class. A month of 15-minute intervals for 10,000 meters
is 30 million rows; one Python loop over them would take minutes.

Exactness: ``compute_determinants`` takes each float through its shortest repr to a Decimal
rounded half-even to 1e-6 kWh. PostgreSQL (12+, ``extra_float_digits`` >= 1) prints a float8
in the same shortest form, and the SQL below rounds half-even too, so the sums are equal to
the last digit; tests/integration/test_bill_runs.py compares the two ways on awkward values.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from meterhub.billing.determinants import (
    KWH_QUANTUM,
    Bin,
    Determinants,
    _Classifier,
    _floor_local,
    compute_determinants,
    holiday_set,
    period_bounds_utc,
    season_days,
)
from meterhub.billing.tariff import Tariff
from meterhub.readings.intervals import Interval
from meterhub.readings.model import Quality
from meterhub.store.db import is_postgres
from meterhub.store.queries import load_intervals

SLOT = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class PeriodUsage:
    determinants: Determinants
    daily_kwh: dict[date, Decimal] = field(default_factory=dict)  # local day -> kWh imported
    estimated_dates: list[date] = field(default_factory=list)


def usage_from_intervals(
    intervals: Sequence[Interval], tariff: Tariff, start: date, end: date
) -> PeriodUsage:
    determinants = compute_determinants(intervals, tariff, start, end)
    first, last = period_bounds_utc(start, end, tariff.zone)
    zone = tariff.zone
    daily: dict[date, Decimal] = defaultdict(Decimal)
    estimated: set[date] = set()
    for interval in intervals:
        if not first <= interval.start < last:
            continue
        day = interval.start.astimezone(zone).date()
        daily[day] += Decimal(repr(interval.import_kwh)).quantize(KWH_QUANTUM)
        if interval.quality is not Quality.ACTUAL:
            estimated.add(day)
    return PeriodUsage(determinants, dict(sorted(daily.items())), sorted(estimated))


def usage_by_meter(
    conn: Connection, tariff: Tariff, meter_ids: Sequence[str], start: date, end: date
) -> dict[str, PeriodUsage]:
    """Usage of ``[start, end)`` for each meter that has intervals in it."""
    if not meter_ids:
        return {}
    if not is_postgres(conn.engine):
        return _usage_one_by_one(conn, tariff, meter_ids, start, end)
    slots = _SlotTable(tariff, start, end)
    # Shortest-exact float text (as Python's repr); hash aggregates in memory; no JIT, whose
    # compile time is more than it saves on a chunk.
    conn.execute(text("SET LOCAL extra_float_digits = 1"))
    conn.execute(text("SET LOCAL work_mem = '256MB'"))
    conn.execute(text("SET LOCAL jit = off"))
    rows = conn.execute(
        text(_AGGREGATE_SQL),
        {
            "slots": slots.starts,
            "days": slots.days,
            "bins": slots.bins,
            "s30": slots.half_hours,
            "s60": slots.hours,
            "meters": list(meter_ids),
            "first": slots.first,
            "last": slots.last,
        },
    ).all()
    usage, unplaced = _assemble(rows, slots, tariff, start, end)
    if unplaced:
        usage.update(_usage_one_by_one(conn, tariff, sorted(unplaced), start, end))
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


class _SlotTable:
    """Every 15-minute slot of the period and what the tariff makes of it."""

    def __init__(self, tariff: Tariff, start: date, end: date) -> None:
        zone = tariff.zone
        clock_zone = (
            ZoneInfo(tariff.time_of_use.clock_zone)
            if tariff.time_of_use and tariff.time_of_use.clock_zone
            else zone
        )
        classify = _Classifier(tariff, zone, clock_zone, holiday_set(tariff, start, end))
        self.first, self.last = period_bounds_utc(start, end, zone)
        self.classes: list[tuple[str, str, str]] = []
        index: dict[tuple[str, str, str], int] = {}
        self.starts: list[datetime] = []
        self.days: list[date] = []
        self.bins: list[int] = []
        # Local half hours and hours, numbered: equal numbers, same demand window.
        self.half_hours: list[int] = []
        self.hours: list[int] = []
        windows: dict[datetime, int] = {}
        slot = self.first
        while slot < self.last:
            local = slot.astimezone(zone)
            key = classify(slot)
            if key not in index:
                index[key] = len(self.classes)
                self.classes.append(key)
            self.starts.append(slot)
            self.days.append(local.date())
            self.bins.append(index[key])
            self.half_hours.append(windows.setdefault(_floor_local(local, 30), len(windows)))
            self.hours.append(windows.setdefault(_floor_local(local, 60), len(windows)))
            slot += SLOT


def _assemble(
    rows: Sequence[Any], slots: _SlotTable, tariff: Tariff, start: date, end: date
) -> tuple[dict[str, PeriodUsage], set[str]]:
    by_meter: dict[str, dict[str, Any]] = {}
    unplaced: set[str] = set()
    for part, meter_id, day, bin_index, kwh, export, count, estimated, peak in rows:
        acc = by_meter.setdefault(
            meter_id,
            {
                "bins": defaultdict(Decimal),
                "day_types": defaultdict(Decimal),
                "daily": defaultdict(Decimal),
                "import": Decimal(0),
                "export": Decimal(0),
                "count": 0,
                "estimated": 0,
                "estimated_dates": set(),
                "demand": {15: Decimal(0), 30: Decimal(0), 60: Decimal(0)},
            },
        )
        if part != 0:
            acc["demand"][part] = max(acc["demand"][part], kwh if kwh is not None else Decimal(0))
            continue
        if bin_index is None:
            unplaced.add(meter_id)
            continue
        season, window, day_type = slots.classes[bin_index]
        acc["bins"][season, window] += kwh
        acc["day_types"][day_type] += kwh
        acc["daily"][day] += kwh
        acc["import"] += kwh
        acc["export"] += export
        acc["count"] += count
        acc["estimated"] += estimated
        if estimated:
            acc["estimated_dates"].add(day)
        if peak is not None:
            acc["demand"][15] = max(acc["demand"][15], peak)
    days = Decimal((end - start).days)
    by_season = season_days(tariff, start, end)
    usage: dict[str, PeriodUsage] = {}
    for meter_id, acc in by_meter.items():
        if meter_id in unplaced or acc["count"] == 0:
            continue
        demand = acc["demand"]
        max_demand = {15: demand[15], 30: demand[30] * 60 / 30, 60: demand[60] * 60 / 60}
        bins: dict[Bin, Decimal] = dict(acc["bins"])
        determinants = Determinants(
            start=start,
            end=end,
            days=days,
            import_kwh=acc["import"],
            export_kwh=acc["export"],
            energy_by_bin=bins,
            days_by_season=by_season,
            energy_by_day_type=dict(acc["day_types"]),
            max_demand_kw={m: kw.quantize(Decimal("0.001")) for m, kw in max_demand.items()},
            intervals=acc["count"],
            estimated_intervals=acc["estimated"],
        )
        usage[meter_id] = PeriodUsage(
            determinants, dict(sorted(acc["daily"].items())), sorted(acc["estimated_dates"])
        )
    return usage, unplaced


# Half-even rounding to 6 decimals, as Decimal.quantize does (PostgreSQL's round() rounds half
# away from zero): on an exact tie (7th decimal 5, nothing after) keep the even 6th decimal.
def _half_even(value: str) -> str:
    return (
        f"CASE WHEN abs({value} - trunc({value}, 6)) = 0.0000005"
        f" AND mod(abs(trunc({value} * 1000000)), 2) = 0"
        f" THEN trunc({value}, 6) ELSE round({value}, 6) END"
    )


_AGGREGATE_SQL = f"""
WITH b AS (
    SELECT * FROM unnest(
        CAST(:slots AS timestamptz[]), CAST(:days AS date[]), CAST(:bins AS integer[]),
        CAST(:s30 AS integer[]), CAST(:s60 AS integer[])
    ) AS b(slot, day, bin, slot30, slot60)
), raw AS (
    SELECT i.meter_id, i.seconds, i.quality <> 'actual' AS estimated,
           b.day, b.bin, b.slot30, b.slot60,
           CAST(CAST(i.import_kwh AS text) AS numeric) AS vi,
           CAST(CAST(i.export_kwh AS text) AS numeric) AS ve
    FROM unnest(CAST(:meters AS text[])) AS m(id)
    JOIN intervals i ON i.meter_id = m.id AND i.start >= :first AND i.start < :last
    LEFT JOIN b ON b.slot = i.start
), q AS MATERIALIZED (
    SELECT meter_id, seconds, estimated, day, bin, slot30, slot60,
           {_half_even("vi")} AS kwh, {_half_even("ve")} AS export
    FROM raw
)
SELECT 0 AS part, meter_id, day, bin, sum(kwh), sum(export), count(*),
       count(*) FILTER (WHERE estimated),
       max(kwh * 3600 / seconds) FILTER (WHERE seconds <= 900)
FROM q GROUP BY meter_id, day, bin
UNION ALL
SELECT 30, meter_id, NULL, NULL, max(s), NULL, NULL, NULL, NULL FROM (
    SELECT meter_id, sum(kwh) AS s FROM q WHERE seconds <= 1800 GROUP BY meter_id, slot30
) AS h GROUP BY meter_id
UNION ALL
SELECT 60, meter_id, NULL, NULL, max(s), NULL, NULL, NULL, NULL FROM (
    SELECT meter_id, sum(kwh) AS s FROM q WHERE seconds <= 3600 GROUP BY meter_id, slot60
) AS h GROUP BY meter_id
"""
