"""Interval energy derived from cumulative registers. Pure: plain values in, intervals out.

Each assessed reading says how much energy its register gained since the reading it was measured
against (``RegisterStep``). That energy is spread over the span between the two timestamps in
proportion to time, i.e. the register is interpolated linearly, and summed into fixed slots.

Slots are aligned to the UTC epoch in multiples of ``interval``. Every real time zone's offset is
a multiple of 15 minutes, so 15-minute slots are also local quarter hours everywhere. 30- and
60-minute slots are local half hours and hours only in zones whose offset is a multiple of them:
in +05:45 (Asia/Kathmandu) a 60-minute slot runs from hh:45 to hh:45 local, in +05:30
(Asia/Kolkata) from hh:30 to hh:30; use 15-minute slots there and roll up by calendar
(``readings.usage``).

Only slots fully inside the span of trusted readings are emitted: a slot at either end that is
only partly covered is left out, and appears when later readings cover it. A late reading only
changes slots between its trusted neighbours, so the adapter recomputes a window around it
(``covering_window``) and replaces what it stored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from meterhub.readings.model import Quality, Reading
from meterhub.readings.vee import Assessment

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_QUALITY_RANK: dict[Quality, int] = {
    Quality.ACTUAL: 0,
    Quality.EDITED: 1,
    Quality.ESTIMATED: 2,
    Quality.SUSPECT: 3,
}
_QUALITY_BY_RANK: tuple[Quality, ...] = tuple(sorted(_QUALITY_RANK, key=_QUALITY_RANK.__getitem__))
_ESTIMATED_RANK = _QUALITY_RANK[Quality.ESTIMATED]
# Step kinds after which the register value is a trusted reference for the next step.
_TRUSTED_KINDS = frozenset({"first", "normal", "rollover", "reset", "jump"})


@dataclass(frozen=True, slots=True)
class Interval:
    meter_id: str
    start: datetime  # UTC, a multiple of ``seconds`` since the epoch
    seconds: int
    import_kwh: float
    export_kwh: float
    quality: Quality


@dataclass(frozen=True, slots=True)
class Gap:
    """A span between trusted readings longer than the short-gap limit: an operator should look."""

    meter_id: str
    start: datetime
    end: datetime


def slot_start(ts: datetime, interval: timedelta) -> datetime:
    """Start of the slot that contains ``ts``."""
    return EPOCH + ((ts - EPOCH) // interval) * interval


def covering_window(
    ts_min: datetime, ts_max: datetime, interval: timedelta
) -> tuple[datetime, datetime]:
    """The smallest slot-aligned window ``[start, end)`` that contains ``[ts_min, ts_max]``.

    Pass the timestamps of the trusted readings either side of the new data, not the new data's
    own: a reading changes every slot between its neighbours.
    """
    start = slot_start(ts_min, interval)
    end = slot_start(ts_max, interval)
    if end < ts_max or end == start:
        end += interval
    return start, end


def derive_intervals(
    readings: Sequence[Reading],
    assessments: Sequence[Assessment],
    *,
    interval: timedelta,
) -> list[Interval]:
    """Intervals of one meter from its readings sorted by ``ts`` and their assessments.

    A slot's quality is the worst of the steps that overlap it; a step spanning more than one
    interval is a gap and at least estimated. Every gap, however long, is spread the same way
    (energy is conserved); ``long_gaps`` lists the long ones for the operator.
    """
    if len(readings) != len(assessments):
        raise ValueError("one assessment per reading is required")
    seconds = _interval_seconds(interval)
    span = _trusted_span(readings, assessments)
    if span is None:
        return []
    first_slot = math.ceil(span[0] / seconds)
    end_slot = math.floor(span[1] / seconds)
    if end_slot <= first_slot:
        return []
    slots = _SlotTotals(first_slot, end_slot, seconds)
    previous_ts, previous_seconds = EPOCH, 0.0
    for reading, assessment in zip(readings, assessments, strict=True):
        end = reading.ts.timestamp()
        rank = _QUALITY_RANK[assessment.quality]
        step, export_step = assessment.step, assessment.export_step
        # Steps nearly always start at the previous reading: reuse its epoch seconds, because
        # converting datetimes dominates the cost of a derivation otherwise.
        if step is not None:
            since = previous_seconds if step.since == previous_ts else step.since.timestamp()
            if export_step is not None and export_step.since == step.since:
                slots.spread(since, end, step.delta_kwh, export_step.delta_kwh, rank)
                export_step = None
            else:
                slots.spread(since, end, step.delta_kwh, 0.0, rank)
        if export_step is not None:
            slots.spread(export_step.since.timestamp(), end, 0.0, export_step.delta_kwh, rank)
        previous_ts, previous_seconds = reading.ts, end
    return slots.intervals(readings[0].meter_id)


def long_gaps(
    readings: Sequence[Reading], assessments: Sequence[Assessment], *, short_gap: timedelta
) -> list[Gap]:
    """Import steps that span more than ``short_gap``: holes in the data worth an event."""
    return [
        Gap(reading.meter_id, assessment.step.since, reading.ts)
        for reading, assessment in zip(readings, assessments, strict=True)
        if assessment.step is not None
        and assessment.step.kind in _TRUSTED_KINDS
        and reading.ts - assessment.step.since > short_gap
    ]


def _interval_seconds(interval: timedelta) -> int:
    seconds = interval.total_seconds()
    if seconds <= 0 or seconds != int(seconds):
        raise ValueError(f"interval must be a positive whole number of seconds, not {interval}")
    return int(seconds)


def _trusted_span(
    readings: Sequence[Reading], assessments: Sequence[Assessment]
) -> tuple[float, float] | None:
    """Epoch seconds of the first and last readings whose import register can be trusted."""
    trusted = [
        reading.ts.timestamp()
        for reading, assessment in zip(readings, assessments, strict=True)
        if assessment.step is not None and assessment.step.kind in _TRUSTED_KINDS
    ]
    if not trusted:
        return None
    return trusted[0], trusted[-1]


class _SlotTotals:
    """Energy and worst quality per slot over a fixed range of slot numbers."""

    def __init__(self, first_slot: int, end_slot: int, seconds: int) -> None:
        self.first_slot = first_slot
        self.count = end_slot - first_slot
        self.seconds = seconds
        self.import_kwh = [0.0] * self.count
        self.export_kwh = [0.0] * self.count
        self.rank = [0] * self.count

    def spread(
        self, start: float, end: float, import_kwh: float, export_kwh: float, rank: int
    ) -> None:
        """Add energy measured over ``[start, end]`` (epoch seconds) to the slots it overlaps."""
        duration = end - start
        if duration <= 0.0:
            return
        seconds = self.seconds
        if duration > seconds and rank < _ESTIMATED_RANK:
            rank = _ESTIMATED_RANK
        first = int(start // seconds) - self.first_slot
        last = -int(-end // seconds) - self.first_slot
        if last - first == 1:
            # Within one slot: the usual case of readings at least as frequent as slots.
            if 0 <= first < self.count:
                self._add(first, import_kwh, export_kwh, rank)
            return
        origin = self.first_slot * seconds
        for index in range(max(first, 0), min(last, self.count)):
            slot_begin = origin + index * seconds
            slot_end = slot_begin + seconds
            overlap = (end if end < slot_end else slot_end) - (
                start if start > slot_begin else slot_begin
            )
            share = overlap / duration
            self._add(index, import_kwh * share, export_kwh * share, rank)

    def _add(self, index: int, import_kwh: float, export_kwh: float, rank: int) -> None:
        self.import_kwh[index] += import_kwh
        self.export_kwh[index] += export_kwh
        if rank > self.rank[index]:
            self.rank[index] = rank

    def intervals(self, meter_id: str) -> list[Interval]:
        seconds = self.seconds
        length = timedelta(seconds=seconds)
        start = EPOCH + self.first_slot * length
        result = []
        for import_kwh, export_kwh, rank in zip(
            self.import_kwh, self.export_kwh, self.rank, strict=True
        ):
            result.append(
                Interval(meter_id, start, seconds, import_kwh, export_kwh, _QUALITY_BY_RANK[rank])
            )
            start += length
        return result
