"""Which meter's intervals count for a consumer's period when a meter was replaced inside it.

A consumer is billed once per period, on the energy of every meter that served it: the old
meter's up to the swap and the new meter's after it. The installation history says which meter
served when; this module, free of I/O, clips it to the period and picks the intervals. An
interval counts for a meter's span when it overlaps the span, so the quarter hour in which the
swap happened keeps the old meter's energy before it and the new meter's after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from meterhub.readings.intervals import Interval


@dataclass(frozen=True, slots=True)
class Installation:
    """One row of the history: ``meter_id`` served the consumer over [installed_at, removed_at);
    None at either end means open (before records began, still installed)."""

    meter_id: str
    installed_at: datetime | None
    removed_at: datetime | None
    initial_reading_kwh: float | None = None
    final_reading_kwh: float | None = None


@dataclass(frozen=True, slots=True)
class Span:
    """The part of a billing period [start, end) that ``installation``'s meter served."""

    installation: Installation
    start: datetime
    end: datetime

    @property
    def meter_id(self) -> str:
        return self.installation.meter_id

    def covers(self, interval: Interval) -> bool:
        finish = interval.start + timedelta(seconds=interval.seconds)
        return interval.start < self.end and finish > self.start


class OverlappingMeters(ValueError):
    """Two meters recorded as serving the consumer at the same time."""


def spans_in_period(
    history: Iterable[Installation], current_meter_id: str, first: datetime, last: datetime
) -> list[Span]:
    """The spans of ``[first, last)`` each meter served, in time order.

    ``current_meter_id`` (the consumer's active meter) with no row in ``history`` has served
    throughout. Raises ``OverlappingMeters`` when two spans overlap: that is two meters at once,
    not a replacement, and the bill would count the energy twice."""
    rows = list(history)
    if not any(row.meter_id == current_meter_id for row in rows):
        rows.append(Installation(current_meter_id, None, None))
    spans = []
    for row in rows:
        start = first if row.installed_at is None else max(first, row.installed_at)
        end = last if row.removed_at is None else min(last, row.removed_at)
        if start < end:
            spans.append(Span(row, start, end))
    spans.sort(key=lambda span: span.start)
    for before, after in pairwise(spans):
        if after.start < before.end:
            raise OverlappingMeters(
                f"meters {before.meter_id} and {after.meter_id} both served from {after.start}"
            )
    return spans


def is_whole_period(spans: Sequence[Span], first: datetime, last: datetime) -> bool:
    """One meter over all of the period: the ordinary bill, no swap to account for."""
    return len(spans) == 1 and spans[0].start == first and spans[0].end == last


def intervals_in_spans(
    intervals: Mapping[str, Iterable[Interval]], spans: Sequence[Span]
) -> list[Interval]:
    """The intervals of each span's meter that overlap the span, in time order."""
    chosen = [
        interval
        for span in spans
        for interval in intervals.get(span.meter_id, ())
        if span.covers(interval)
    ]
    return sorted(chosen, key=lambda interval: (interval.start, interval.meter_id))
