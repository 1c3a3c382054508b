"""A bill run's usage for consumers whose meter was replaced inside the period, whose supply
began inside it, or who went prepaid inside it.

Most consumers had one meter all period and take the fast path (``jobs.run_usage.usage_by_meter``).
For the few whose installation history has more than that, this reads each meter's intervals
over its span (``core.meter_spans`` decides which count) and computes the period's usage over all of
them together, so slabs apply to the combined consumption and maximum demand is taken over the
combined intervals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from meterhub.billing.core.determinants import KWH_QUANTUM, period_bounds_utc
from meterhub.billing.core.meter_spans import (
    Installation,
    OverlappingMeters,
    Span,
    intervals_in_spans,
    is_whole_period,
    spans_in_period,
)
from meterhub.billing.core.period_usage import PeriodUsage, usage_from_intervals
from meterhub.billing.core.service_span import ServiceSpan, service_span
from meterhub.billing.core.tariff import Tariff
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
    service: ServiceSpan  # the days billed: fewer than the period's after a move-in


def usage_across_swaps(
    conn: Connection,
    tariff: Tariff,
    current: Sequence[tuple[str, str]],
    start: date,
    end: date,
    *,
    prepaid_from: Mapping[str, datetime] | None = None,
) -> tuple[dict[str, SwapUsage], dict[str, str], set[str]]:
    """For each (consumer id, active meter id) in ``current`` whose period was not simply
    served by that meter throughout: its usage and spans, by consumer. That is a meter replaced
    inside the period, a supply that began inside it (move-in), or a consumer who went prepaid
    inside it (``prepaid_from``: postpaid service ends then). Second, by consumer, why a
    consumer's history cannot be billed (two meters at once). Third, the consumers with no
    postpaid service in the period at all (supplied only after it, or prepaid all of it)."""
    first, last = period_bounds_utc(start, end, tariff.zone)
    prepaid_from = prepaid_from or {}
    history = _history(conn, [consumer for consumer, _ in current], first, last)
    found: dict[str, SwapUsage] = {}
    refused: dict[str, str] = {}
    unserved: set[str] = set()
    for consumer_id, meter_id in current:
        if consumer_id not in history and consumer_id not in prepaid_from:
            continue
        try:
            spans = spans_in_period(history.get(consumer_id, ()), meter_id, first, last)
        except OverlappingMeters as exc:
            refused[consumer_id] = str(exc)
            continue
        service = service_span(
            start,
            end,
            tariff.zone,
            supplied_from=spans[0].start if spans else None,
            prepaid_from=prepaid_from.get(consumer_id),
        )
        if service is None or not spans:
            unserved.add(consumer_id)
            continue
        spans = [_clip(span, service.last) for span in spans if span.start < service.last]
        if service.whole and is_whole_period(spans, first, last) and spans[0].meter_id == meter_id:
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
        usage = usage_from_intervals(chosen, tariff, service.start, service.end) if chosen else None
        found[consumer_id] = SwapUsage(
            usage,
            spans,
            [_meter_entry(span, intervals, tariff.zone) for span in spans],
            service,
        )
    return found, refused, unserved


def _history(
    conn: Connection, consumer_ids: Sequence[str], first: datetime, last: datetime
) -> dict[str, list[Installation]]:
    rows = meter_store.installations(conn, consumer_ids, first, last)
    return {consumer: [Installation(*row) for row in found] for consumer, found in rows.items()}


def _clip(span: Span, last: datetime) -> Span:
    return span if span.end <= last else Span(span.installation, span.start, last)


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
