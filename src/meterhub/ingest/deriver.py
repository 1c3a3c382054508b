"""The interval deriver: VEE over sorted readings, then intervals, for queued meters.

It runs beside the ingest worker (or alone, `meterhub derive`) and yields to ingestion: readings
are stored first, intervals follow within seconds, and a burst only delays them.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine

from meterhub.config import Settings
from meterhub.readings.events import MeterEvent, platform_event
from meterhub.readings.intervals import Gap, Interval, derive_intervals, long_gaps, slot_start
from meterhub.readings.vee import assess_sequence
from meterhub.store.events import insert_events
from meterhub.store.interval_store import (
    Work,
    load_profiles,
    load_window,
    process_queued,
    replace_intervals,
    save_assessments,
)

log = logging.getLogger("meterhub.derive")


class IntervalDeriver:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.engine = engine
        self.interval = timedelta(minutes=settings.interval_minutes)
        self.short_gap = timedelta(minutes=settings.short_gap_minutes)
        self.zero_streak = timedelta(minutes=settings.zero_streak_minutes)
        self.chunk = settings.derive_chunk_meters

    def run_once(self) -> int:
        """Process one chunk of queued meters; returns how many meters were processed."""
        return process_queued(self.engine, self._compute, chunk=self.chunk)

    def drain(self) -> int:
        total = 0
        while processed := self.run_once():
            total += processed
        return total

    def _compute(self, conn: Connection, work: list[Work], at: datetime) -> None:
        profiles = load_profiles(conn, [w.meter_id for w in work])
        for item in work:
            window = load_window(conn, item)
            if not window.readings:
                continue
            assessments = assess_sequence(
                window.readings, profiles[item.meter_id], zero_streak=self.zero_streak
            )
            events = save_assessments(conn, window, assessments, at)
            intervals = derive_intervals(window.readings, assessments, interval=self.interval)
            # Intervals before the reading preceding the new data are unchanged by it and were
            # computed with more context before: keep them.
            # A new reading's step may reach back past a suspect neighbour to the last trusted
            # register (``step.since``): recompute from the earliest such point.
            anchor = window.readings[max(window.first_new - 1, 0)].ts
            for assessment in assessments[window.first_new :]:
                if assessment.step is not None and assessment.step.since < anchor:
                    anchor = assessment.step.since
            keep_from = slot_start(anchor, self.interval)
            fresh = [i for i in intervals if i.start >= keep_from]
            if fresh:
                end = fresh[-1].start + self.interval
                replace_intervals(conn, item.meter_id, keep_from, end, [_row(i, at) for i in fresh])
            for gap in long_gaps(window.readings, assessments, short_gap=self.short_gap):
                if gap.end < item.from_ts:
                    continue
                events.append(_long_gap_event(gap, at))
            insert_events(conn, events)


def _long_gap_event(gap: Gap, at: datetime) -> MeterEvent:
    # Keyed by the gap's end: a gap that later shrinks (a late reading inside it) is a new event.
    until = gap.end.isoformat()
    payload = {"start": gap.start.isoformat(), "end": until}
    return platform_event(
        gap.meter_id, gap.start, "long_gap", payload, received_at=at, key=until.encode()
    )


def _row(interval: Interval, at: datetime) -> dict[str, object]:
    return {
        "meter_id": interval.meter_id,
        "start": interval.start,
        "seconds": interval.seconds,
        "import_kwh": interval.import_kwh,
        "export_kwh": interval.export_kwh,
        "quality": interval.quality.value,
        "computed_at": at,
    }
