"""A bill run's usage for consumers whose meter was replaced inside the period.

Most consumers had one meter all period and take the fast path (``run_usage.usage_by_meter``).
For the few whose installation history has more than that, this reads each meter's intervals
over its span (``meter_spans`` decides which count) and computes the period's usage over all of
them together, so slabs apply to the combined consumption and maximum demand is taken over the
combined intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from meterhub.billing.determinants import KWH_QUANTUM, period_bounds_utc
from meterhub.billing.meter_spans import (
    OverlappingMeters,
    Span,
    intervals_in_spans,
    is_whole_period,
    spans_in_period,
)
from meterhub.billing.run_usage import PeriodUsage, usage_from_intervals
from meterhub.billing.tariff import Tariff
from meterhub.readings.intervals import Interval
from meterhub.readings.model import Quality
from meterhub.store import meters as meter_store
from meterhub.store.queries import load_intervals

# Intervals are read from this long before a span, since one that starts before it may still
# reach into it (a daily interval at most).
LONGEST_INTERVAL = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class SwapUsage:
    usage: PeriodUsage | None  # None: no intervals from any of the meters
    spans: list[Span]
    meters: list[dict[str, Any]]  # for the bill document, one entry per span


def usage_across_swaps(
    conn: Connection,
    tariff: Tariff,
    current: Sequence[tuple[str, str]],
    start: date,
    end: date,
) -> tuple[dict[str, SwapUsage], dict[str, str]]:
    """For each (consumer id, active meter id) in ``current`` whose period was served by more
    than that meter (or by it for part of the period only): its usage and spans, by consumer.
    Second, by consumer, why a consumer's history cannot be billed (two meters at once)."""
    first, last = period_bounds_utc(start, end, tariff.zone)
    history = meter_store.installations(conn, [consumer for consumer, _ in current], first, last)
    found: dict[str, SwapUsage] = {}
    refused: dict[str, str] = {}
    for consumer_id, meter_id in current:
        if consumer_id not in history:
            continue
        try:
            spans = spans_in_period(history[consumer_id], meter_id, first, last)
        except OverlappingMeters as exc:
            refused[consumer_id] = str(exc)
            continue
        if is_whole_period(spans, first, last) and spans[0].meter_id == meter_id:
            continue
        intervals: dict[str, list[Interval]] = {}
        for span in spans:  # a meter may come back after a while: one list per meter
            read = load_intervals(
                conn, span.meter_id, max(first, span.start - LONGEST_INTERVAL), span.end
            )
            known = {i.start: i for i in intervals.get(span.meter_id, [])}
            known.update((i.start, i) for i in read)
            intervals[span.meter_id] = sorted(known.values(), key=lambda i: i.start)
        chosen = intervals_in_spans(intervals, spans)
        usage = usage_from_intervals(chosen, tariff, start, end) if chosen else None
        found[consumer_id] = SwapUsage(
            usage, spans, [_meter_entry(span, intervals, tariff.zone) for span in spans]
        )
    return found, refused


def _meter_entry(
    span: Span, intervals: dict[str, list[Interval]], zone: ZoneInfo
) -> dict[str, Any]:
    own = [interval for interval in intervals[span.meter_id] if span.covers(interval)]
    kwh = sum((Decimal(repr(i.import_kwh)).quantize(KWH_QUANTUM) for i in own), Decimal(0))
    row = span.installation
    return {
        "id": span.meter_id,
        "from": _local(span.start, zone),
        "to": _local(span.end, zone),
        "import_kwh": f"{kwh.quantize(Decimal('0.001')):f}",
        "intervals": len(own),
        "estimated_intervals": sum(1 for i in own if i.quality is not Quality.ACTUAL),
        "initial_reading_kwh": row.initial_reading_kwh,
        "final_reading_kwh": row.final_reading_kwh,
    }


def _local(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
