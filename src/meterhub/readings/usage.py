"""Energy by calendar period in the utility's time zone. Pure: intervals in, buckets out.

Calendar boundaries are local: in Asia/Kathmandu (+05:45) a day starts at 18:15 UTC the evening
before, and in a DST zone one day a year has 23 hours and one has 25. An interval belongs to the
bucket that contains its start; with 15-minute intervals that is exact in every real zone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from meterhub.readings.intervals import Interval
from meterhub.readings.model import Quality

Period = Literal["hour", "day", "month"]


@dataclass(frozen=True, slots=True)
class UsageBucket:
    start_local: datetime  # aware, in the zone
    end_local: datetime  # exclusive
    import_kwh: float
    export_kwh: float
    intervals: int
    # Intervals whose value is not a plain measurement (estimated, edited or suspect): what a
    # bill or a chart must disclose.
    estimated_intervals: int


def energy_by_period(
    intervals: Iterable[Interval], *, period: Period, zone: ZoneInfo
) -> list[UsageBucket]:
    """Sum intervals into local hours, days or months, in time order; empty periods are absent."""
    bounds_of = _BOUNDS[period]
    totals: dict[datetime, _Totals] = {}
    for interval in intervals:
        start_utc, end_utc = bounds_of(interval.start.astimezone(zone), zone)
        bucket = totals.get(start_utc)
        if bucket is None:
            bucket = totals[start_utc] = _Totals(end_utc)
        bucket.add(interval)
    return [
        UsageBucket(
            start_local=start_utc.astimezone(zone),
            end_local=bucket.end_utc.astimezone(zone),
            import_kwh=bucket.import_kwh,
            export_kwh=bucket.export_kwh,
            intervals=bucket.count,
            estimated_intervals=bucket.estimated,
        )
        for start_utc, bucket in sorted(totals.items())
    ]


def energy_in_range(
    intervals: Iterable[Interval], start: datetime, end: datetime
) -> tuple[float, float]:
    """Import and export kWh in ``[start, end)``; intervals partly inside count pro rata by time."""
    range_start, range_end = start.timestamp(), end.timestamp()
    import_kwh = export_kwh = 0.0
    for interval in intervals:
        interval_start = interval.start.timestamp()
        overlap = min(range_end, interval_start + interval.seconds) - max(
            range_start, interval_start
        )
        if overlap <= 0:
            continue
        share = overlap / interval.seconds
        import_kwh += interval.import_kwh * share
        export_kwh += interval.export_kwh * share
    return import_kwh, export_kwh


class _Totals:
    __slots__ = ("count", "end_utc", "estimated", "export_kwh", "import_kwh")

    def __init__(self, end_utc: datetime) -> None:
        self.end_utc = end_utc
        self.import_kwh = 0.0
        self.export_kwh = 0.0
        self.count = 0
        self.estimated = 0

    def add(self, interval: Interval) -> None:
        self.import_kwh += interval.import_kwh
        self.export_kwh += interval.export_kwh
        self.count += 1
        if interval.quality is not Quality.ACTUAL:
            self.estimated += 1


def _hour_bounds(local: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    # Keeps ``fold``, so the repeated hour of an autumn DST change is a bucket of its own.
    start = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    return start, start + timedelta(hours=1)


def _day_bounds(local: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    day = local.date()
    return _local_midnight(day, zone), _local_midnight(day + timedelta(days=1), zone)


def _month_bounds(local: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    first = local.date().replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return _local_midnight(first, zone), _local_midnight(following, zone)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The instant ``day`` begins in ``zone``, in UTC.

    Where midnight does not exist (a DST change at 00:00), ``fold=0`` resolves it with the offset
    before the change, which is exactly the instant of the change: the day's true start.
    """
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


_BOUNDS: dict[Period, Callable[[datetime, ZoneInfo], tuple[datetime, datetime]]] = {
    "hour": _hour_bounds,
    "day": _day_bounds,
    "month": _month_bounds,
}
