"""SQL over intervals for bills: each meter's intervals of a period packed for the bill run's
fast path, and energy sums for a bill's comparisons with earlier periods.

The packed query does as little per interval as it can: each interval's kWh becomes whole
micro-kWh and its start the seconds since the period began, and each meter's starts and
energies come back as two packed byte strings (billing sums them by time-of-use slot,
``billing.core.period_usage.SlotTable``). A month of 15-minute intervals for 10,000 meters is
30 million rows; anything done row by row in Python, or in exact numeric or a GROUP BY per slot
class in SQL, takes minutes.

Exactness: billing takes each float through its shortest repr to a Decimal rounded half-even to
1e-6 kWh. The query gets the same integer with binary64 arithmetic: ``y = kWh * 1e6`` is within
2.5 units in the last place of ``y`` of the shortest-repr decimal times 1e6, so wherever ``y``
is further than that from a half-integer, ``round(y)`` is the half-even rounding of that decimal
(and no tie is ever left to ``round``, whose tie-breaking PostgreSQL leaves to the platform).
The rare values within a relative 1e-12 of a tie take the exact route: the float's shortest text
(PostgreSQL 12+ prints it as Python's repr does) to numeric, rounded half-even. The sums are
integers, equal to the Decimal sums to the last digit; tests/integration/test_bill_runs.py
checks the rule on thousands of ties and their neighbours and compares the two ways meter by
meter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection, func, select, text

from meterhub.store import schema
from meterhub.store.dialects import is_postgres


class PackedUsage(NamedTuple):
    meter_id: str
    shortest: int  # seconds
    longest: int
    starts: bytes  # big-endian int4 seconds from the period's first instant
    energy: bytes  # big-endian int8 micro-kWh, in the order of ``starts``
    export: int | None  # micro-kWh, summed over the intervals with export
    exported: bool | None  # False: some export could not be converted exactly
    estimated: list[int] | None  # offsets of the intervals that are not actual measurements


def packed_intervals(
    conn: Connection, meter_ids: Sequence[str], first: datetime, last: datetime
) -> list[PackedUsage] | None:
    """Per meter with intervals starting in ``[first, last)``: (meter id, shortest and longest
    interval in seconds, starts as big-endian int4 seconds from ``first``, energies as int8
    micro-kWh in the same order, exported micro-kWh summed where there is export, whether all
    of it could be converted, offsets of the intervals that are not actual measurements).
    None on a database that cannot pack them (SQLite): the caller reads the intervals."""
    if not is_postgres(conn):
        return None
    # Shortest-exact float text (as Python's repr) for the values near a tie. No JIT, whose
    # compile time is more than it saves on a chunk; no parallel workers, which bring a scan of
    # the whole partition into the plans: runs read chunks on connections of their own instead.
    conn.execute(text("SET LOCAL extra_float_digits = 1"))
    conn.execute(text("SET LOCAL jit = off"))
    conn.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    rows = conn.execute(
        text(_USAGE_SQL),
        {
            "meters": list(meter_ids),
            "first": first,
            "last": last,
            "first_epoch": first.timestamp(),
        },
    )
    return [PackedUsage(*row) for row in rows]


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


# Half-even rounding to 6 decimals, as Decimal.quantize does (PostgreSQL's round(numeric) rounds
# half away from zero): on an exact tie (7th decimal 5, nothing after) keep the even 6th decimal.
def _half_even(value: str) -> str:
    return (
        f"CASE WHEN abs({value} - trunc({value}, 6)) = 0.0000005"
        f" AND mod(abs(trunc({value} * 1000000)), 2) = 0"
        f" THEN trunc({value}, 6) ELSE round({value}, 6) END"
    )


def micro_kwh_sql(kwh: str) -> str:
    """SQL: a float8 of kWh as whole micro-kWh, equal to Python's
    ``Decimal(repr(kwh)).quantize(Decimal("0.000001")) * 10**6``; NULL beyond 2**52 micro-kWh
    (4.5e9 kWh) or for a NaN, which sends the meter the pure way."""
    y = f"({kwh} * CAST(1000000 AS float8))"
    exact = f"CAST(CAST({kwh} AS text) AS numeric)"
    return (
        f"CASE WHEN NOT abs({y}) < 4503599627370496 THEN NULL"
        # Scaled up, not down: PostgreSQL raises on a product that underflows to zero.
        f" WHEN abs({y} - floor({y}) - 0.5) * 1e12 > abs({y}) THEN CAST(round({y}) AS bigint)"
        f" ELSE CAST(({_half_even(exact)}) * 1000000 AS bigint) END"
    )


# Seconds from the period's first instant to the interval's start, rounded down: a start off
# the slot grid (even by a fraction of a second before a slot) is no multiple of 900.
_OFFSET = "CAST(floor(date_part('epoch', i.start) - :first_epoch) AS integer)"

# Per meter: interval lengths, then starts and energies packed in the same order, export summed
# where there is some (and whether all of it could be), offsets of estimated intervals. The
# sorted subquery makes that order the time order in practice (index order, merged across the
# monthly partitions), which lets Python compare a meter's starts with the full period's in one
# step; any other order is still summed right, only slower.
_USAGE_SQL = f"""
SELECT i.meter_id, min(i.seconds), max(i.seconds),
       string_agg(int4send({_OFFSET}), ''::bytea),
       string_agg(int8send({micro_kwh_sql("i.import_kwh")}), ''::bytea),
       sum({micro_kwh_sql("i.export_kwh")}) FILTER (WHERE i.export_kwh <> 0),
       bool_and({micro_kwh_sql("i.export_kwh")} IS NOT NULL) FILTER (WHERE i.export_kwh <> 0),
       array_agg({_OFFSET}) FILTER (WHERE i.quality <> 'actual')
FROM (
    SELECT * FROM intervals
    WHERE meter_id = ANY(CAST(:meters AS text[])) AND start >= :first AND start < :last
    ORDER BY meter_id, start
) AS i
GROUP BY i.meter_id
"""
