"""Calendar bucketing in the utility's zone, and pro-rated energy over a time range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterhub.readings.intervals import Interval
from meterhub.readings.model import Quality
from meterhub.readings.usage import Period, UsageBucket, energy_by_period, energy_in_range

KATHMANDU = ZoneInfo("Asia/Kathmandu")
LONDON = ZoneInfo("Europe/London")
QUARTER = timedelta(minutes=15)
PERIODS: tuple[Period, ...] = ("hour", "day", "month")


def flat_load(
    start: datetime, end: datetime, kwh: float = 1.0, export_kwh: float = 0.0
) -> list[Interval]:
    """One interval of ``kwh`` every 15 minutes over ``[start, end)``."""
    count = (end - start) // QUARTER
    return [
        Interval("m1", start + i * QUARTER, 900, kwh, export_kwh, Quality.ACTUAL)
        for i in range(count)
    ]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def bucket_on(buckets: list[UsageBucket], day: str) -> UsageBucket:
    (found,) = [b for b in buckets if b.start_local.date().isoformat() == day]
    return found


def test_kathmandu_day_starts_at_18_15_utc() -> None:
    intervals = flat_load(utc("2026-11-23T18:00"), utc("2026-11-23T18:30"))
    first, second = energy_by_period(intervals, period="day", zone=KATHMANDU)
    # 18:00 UTC is 23:45 on the 23rd in +05:45; 18:15 UTC is midnight of the 24th.
    assert first.start_local.date().isoformat() == "2026-11-23"
    assert second.start_local == datetime(2026, 11, 24, tzinfo=KATHMANDU)
    assert second.start_local.astimezone(UTC) == utc("2026-11-23T18:15")
    assert (first.intervals, second.intervals) == (1, 1)


def test_london_spring_change_day_has_23_hours() -> None:
    intervals = flat_load(utc("2026-03-28T00:00"), utc("2026-03-31T00:00"))
    day = bucket_on(energy_by_period(intervals, period="day", zone=LONDON), "2026-03-29")
    # Aware datetimes in one zone subtract as wall times (24 h), so compare in UTC.
    assert day.end_local.astimezone(UTC) - day.start_local.astimezone(UTC) == timedelta(hours=23)
    assert day.intervals == 92  # 23 h * 4
    assert day.import_kwh == pytest.approx(92.0)  # 92 * 1 kWh


def test_london_autumn_change_day_has_25_hours() -> None:
    intervals = flat_load(utc("2026-10-24T00:00"), utc("2026-10-27T00:00"))
    day = bucket_on(energy_by_period(intervals, period="day", zone=LONDON), "2026-10-25")
    assert day.end_local.astimezone(UTC) - day.start_local.astimezone(UTC) == timedelta(hours=25)
    assert day.intervals == 100  # 25 h * 4
    assert day.import_kwh == pytest.approx(100.0)  # 100 * 1 kWh


def test_repeated_autumn_hour_is_two_hour_buckets() -> None:
    # 00:00 to 02:00 UTC on 2026-10-25 is 01:00 BST then 01:00 GMT.
    intervals = flat_load(utc("2026-10-25T00:00"), utc("2026-10-25T02:00"))
    first, second = energy_by_period(intervals, period="hour", zone=LONDON)
    assert first.start_local.hour == second.start_local.hour == 1
    assert (first.start_local.fold, second.start_local.fold) == (0, 1)
    assert (first.intervals, second.intervals) == (4, 4)


def test_kathmandu_hours_start_at_quarter_past_utc() -> None:
    intervals = flat_load(utc("2026-11-24T04:00"), utc("2026-11-24T05:15"))
    buckets = energy_by_period(intervals, period="hour", zone=KATHMANDU)
    # 04:00 UTC is 09:45 local: one interval in the 09:00 hour, four in the 10:00 hour.
    assert [b.start_local.hour for b in buckets] == [9, 10]
    assert [b.intervals for b in buckets] == [1, 4]
    assert buckets[1].start_local.astimezone(UTC) == utc("2026-11-24T04:15")


def test_month_buckets_follow_the_zone() -> None:
    # Kathmandu's November starts at 2026-10-31 18:15 UTC.
    intervals = flat_load(utc("2026-10-31T17:00"), utc("2026-10-31T19:00"))
    october, november = energy_by_period(intervals, period="month", zone=KATHMANDU)
    assert october.intervals == 5  # 17:00, 17:15, 17:30, 17:45, 18:00
    assert november.intervals == 3  # 18:15, 18:30, 18:45
    assert november.start_local == datetime(2026, 11, 1, tzinfo=KATHMANDU)
    assert november.end_local == datetime(2026, 12, 1, tzinfo=KATHMANDU)


def test_december_bucket_ends_in_january() -> None:
    intervals = flat_load(utc("2026-12-15T00:00"), utc("2026-12-15T00:15"))
    (december,) = energy_by_period(intervals, period="month", zone=LONDON)
    assert december.end_local == datetime(2027, 1, 1, tzinfo=LONDON)


def test_buckets_count_intervals_that_are_not_actual() -> None:
    intervals = flat_load(utc("2026-11-24T00:00"), utc("2026-11-24T01:00"))
    intervals[1] = Interval("m1", intervals[1].start, 900, 1.0, 0.0, Quality.ESTIMATED)
    intervals[2] = Interval("m1", intervals[2].start, 900, 1.0, 0.0, Quality.SUSPECT)
    (hour,) = energy_by_period(intervals, period="hour", zone=LONDON)
    assert (hour.intervals, hour.estimated_intervals) == (4, 2)


def test_buckets_sum_export_too() -> None:
    intervals = flat_load(utc("2026-11-24T00:00"), utc("2026-11-24T01:00"), export_kwh=0.25)
    (hour,) = energy_by_period(intervals, period="hour", zone=LONDON)
    assert hour.export_kwh == pytest.approx(1.0)  # 4 * 0.25


def test_buckets_come_in_time_order_whatever_the_input_order() -> None:
    intervals = flat_load(utc("2026-11-24T00:00"), utc("2026-11-24T03:00"))
    buckets = energy_by_period(reversed(intervals), period="hour", zone=LONDON)
    assert [b.start_local.hour for b in buckets] == [0, 1, 2]


def test_no_intervals_no_buckets() -> None:
    assert energy_by_period([], period="day", zone=LONDON) == []


@given(
    st.lists(st.floats(min_value=0.0, max_value=10.0), min_size=1, max_size=400),
    st.sampled_from(PERIODS),
    st.sampled_from([LONDON, KATHMANDU, ZoneInfo("America/Santiago")]),
)
def test_buckets_add_up_to_the_intervals(
    energies: list[float], period: Period, zone: ZoneInfo
) -> None:
    start = utc("2026-10-24T12:00")
    intervals = [
        Interval("m1", start + i * QUARTER, 900, kwh, 0.0, Quality.ACTUAL)
        for i, kwh in enumerate(energies)
    ]
    buckets = energy_by_period(intervals, period=period, zone=zone)
    assert sum(b.import_kwh for b in buckets) == pytest.approx(sum(energies))
    assert sum(b.intervals for b in buckets) == len(energies)
    for bucket in buckets:
        assert bucket.start_local < bucket.end_local


def test_energy_in_range_pro_rates_partial_intervals() -> None:
    start = utc("2026-11-24T00:00")
    intervals = [
        Interval("m1", start, 900, 1.5, 0.3, Quality.ACTUAL),
        Interval("m1", start + QUARTER, 900, 3.0, 0.0, Quality.ACTUAL),
    ]
    import_kwh, export_kwh = energy_in_range(
        intervals, start + timedelta(minutes=5), start + timedelta(minutes=20)
    )
    assert import_kwh == pytest.approx(2.0)  # 1.5 * 10/15 + 3.0 * 5/15 = 1.0 + 1.0
    assert export_kwh == pytest.approx(0.2)  # 0.3 * 10/15


def test_energy_in_range_counts_whole_intervals_inside() -> None:
    intervals = flat_load(utc("2026-11-24T00:00"), utc("2026-11-24T02:00"))
    in_range = energy_in_range(intervals, utc("2026-11-24T00:30"), utc("2026-11-24T01:30"))
    assert in_range == pytest.approx((4.0, 0.0))  # four whole quarters of 1 kWh


def test_energy_in_range_ignores_intervals_outside() -> None:
    intervals = flat_load(utc("2026-11-24T00:00"), utc("2026-11-24T01:00"))
    assert energy_in_range(intervals, utc("2026-11-24T01:00"), utc("2026-11-24T02:00")) == (
        0.0,
        0.0,
    )


def test_energy_in_range_accepts_local_times() -> None:
    intervals = flat_load(utc("2026-11-23T18:00"), utc("2026-11-23T18:30"))
    # Midnight in Kathmandu is 18:15 UTC: only the second interval is in the 24th.
    day_start = datetime(2026, 11, 24, tzinfo=KATHMANDU)
    assert energy_in_range(intervals, day_start, day_start + timedelta(days=1)) == (1.0, 0.0)
