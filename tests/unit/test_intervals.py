"""Interval energy from cumulative registers: spreading, coverage, quality and invariants."""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterhub.readings.intervals import (
    Interval,
    covering_window,
    derive_intervals,
    long_gaps,
    slot_start,
)
from meterhub.readings.model import Quality, Reading
from meterhub.readings.vee import MeterProfile, assess_sequence

T0 = datetime(2026, 11, 24, tzinfo=UTC)
QUARTER = timedelta(minutes=15)
SHORT_GAP = timedelta(hours=2)
# 1 phase * 230 V * 100 A = 23 kW at most.
PROFILE = MeterProfile("m1", sanctioned_load_kw=None, phase=1, register_max_kwh=99999.999)
MAX_TEST_POWER_KW = 20.0


def reading(minutes: float, import_kwh: float, export_kwh: float | None = None) -> Reading:
    ts = T0 + timedelta(minutes=minutes)
    return Reading(meter_id="m1", ts=ts, import_kwh=import_kwh, export_kwh=export_kwh)


def derive(readings: Sequence[Reading], interval: timedelta = QUARTER) -> list[Interval]:
    assessments = assess_sequence(readings, PROFILE, zero_streak=timedelta(hours=6))
    return derive_intervals(readings, assessments, interval=interval)


def starts(intervals: list[Interval]) -> list[datetime]:
    return [i.start for i in intervals]


def imports(intervals: list[Interval]) -> list[float]:
    return [i.import_kwh for i in intervals]


def qualities(intervals: list[Interval]) -> list[Quality]:
    return [i.quality for i in intervals]


# --- slots ------------------------------------------------------------------------------------


def test_slot_start_floors_to_the_epoch_grid() -> None:
    ts = datetime(2026, 11, 24, 7, 44, 59, 999999, tzinfo=UTC)
    assert slot_start(ts, QUARTER) == datetime(2026, 11, 24, 7, 30, tzinfo=UTC)


def test_slot_start_of_a_boundary_is_itself() -> None:
    assert slot_start(T0 + QUARTER, QUARTER) == T0 + QUARTER


def test_quarter_slots_are_local_quarters_in_kathmandu() -> None:
    # 10:15 +05:45 is 04:30 UTC, a quarter boundary on the UTC grid too.
    local = datetime.fromisoformat("2026-11-24T10:15:00+05:45")
    assert slot_start(local + timedelta(minutes=7), QUARTER) == local


def test_covering_window_rounds_out_to_whole_slots() -> None:
    window = covering_window(T0 + timedelta(minutes=5), T0 + timedelta(minutes=50), QUARTER)
    assert window == (T0, T0 + timedelta(hours=1))


def test_covering_window_of_aligned_ends_is_exact() -> None:
    assert covering_window(T0, T0 + 2 * QUARTER, QUARTER) == (T0, T0 + 2 * QUARTER)


def test_covering_window_of_one_instant_is_its_slot() -> None:
    assert covering_window(T0, T0, QUARTER) == (T0, T0 + QUARTER)


# --- derivation -------------------------------------------------------------------------------


def test_aligned_readings_give_one_actual_interval_per_slot() -> None:
    intervals = derive([reading(0, 10.0), reading(15, 10.5), reading(30, 11.25)])
    assert starts(intervals) == [T0, T0 + QUARTER]
    assert imports(intervals) == pytest.approx([0.5, 0.75])  # 10.5 - 10, 11.25 - 10.5
    assert qualities(intervals) == [Quality.ACTUAL, Quality.ACTUAL]
    assert all(i.seconds == 900 and i.meter_id == "m1" for i in intervals)


def test_partly_covered_slots_at_the_ends_are_left_out() -> None:
    # 00:05 -> 00:50 covers [00:15, 00:30) and [00:30, 00:45) fully; 1.5 kWh over 45 minutes.
    intervals = derive([reading(5, 10.0), reading(50, 11.5)])
    assert starts(intervals) == [T0 + QUARTER, T0 + 2 * QUARTER]
    assert imports(intervals) == pytest.approx([0.5, 0.5])  # 1.5 * 15 / 45 each


def test_unaligned_readings_are_spread_by_time_overlap() -> None:
    # 00:00 -> 00:10 is 1 kWh, 00:10 -> 00:30 is 2 kWh.
    intervals = derive([reading(0, 0.0), reading(10, 1.0), reading(30, 3.0)])
    assert imports(intervals) == pytest.approx([1.5, 1.5])  # 1 + 2 * 5/20, 2 * 15/20
    # The 20-minute pair is longer than a slot, so it is a gap, and it touches both slots.
    assert qualities(intervals) == [Quality.ESTIMATED, Quality.ESTIMATED]


def test_too_few_readings_give_no_interval() -> None:
    assert derive([reading(0, 1.0)]) == []
    assert derive([reading(1, 1.0), reading(14, 1.2)]) == []
    assert derive([]) == []


def test_gap_is_spread_evenly_and_estimated() -> None:
    intervals = derive([reading(0, 10.0), reading(60, 14.0)])
    assert imports(intervals) == pytest.approx([1.0] * 4)  # 4 kWh over four quarters
    assert qualities(intervals) == [Quality.ESTIMATED] * 4


def test_gap_longer_than_the_short_gap_is_still_spread_and_reported() -> None:
    readings = [reading(0, 10.0), reading(180, 16.0)]
    intervals = derive(readings)
    assert imports(intervals) == pytest.approx([0.5] * 12)  # 6 kWh over twelve quarters
    assessments = assess_sequence(readings, PROFILE, zero_streak=timedelta(hours=6))
    gaps = long_gaps(readings, assessments, short_gap=SHORT_GAP)
    assert [(g.start, g.end) for g in gaps] == [(T0, T0 + timedelta(hours=3))]


def test_short_gap_is_not_reported() -> None:
    readings = [reading(0, 10.0), reading(120, 16.0)]
    assessments = assess_sequence(readings, PROFILE, zero_streak=timedelta(hours=6))
    assert long_gaps(readings, assessments, short_gap=SHORT_GAP) == []


def test_glitch_marks_its_slot_suspect_and_creates_no_energy() -> None:
    intervals = derive([reading(0, 100.0), reading(15, 99.5), reading(30, 100.2)])
    # 0.2 kWh from 100 to 100.2 over 30 minutes, the dip skipped.
    assert imports(intervals) == pytest.approx([0.1, 0.1])
    assert qualities(intervals) == [Quality.SUSPECT, Quality.ESTIMATED]


def test_spike_energy_is_not_counted() -> None:
    intervals = derive([reading(0, 100.0), reading(15, 150.0), reading(30, 100.5)])
    assert sum(imports(intervals)) == pytest.approx(0.5)  # 100.5 - 100
    assert qualities(intervals)[0] is Quality.SUSPECT


def test_slots_after_the_last_trusted_reading_wait_for_more_data() -> None:
    intervals = derive([reading(0, 100.0), reading(15, 100.3), reading(30, 99.9)])
    assert starts(intervals) == [T0]


def test_rollover_energy_lands_in_its_slot() -> None:
    intervals = derive([reading(0, 99999.5), reading(15, 0.7)])
    assert imports(intervals) == pytest.approx([1.199])  # (99999.999 - 99999.5) + 0.7


def test_reset_slot_is_estimated() -> None:
    intervals = derive([reading(0, 1234.0), reading(15, 0.4)])
    assert imports(intervals) == pytest.approx([0.4])
    assert qualities(intervals) == [Quality.ESTIMATED]


def test_export_is_spread_like_import() -> None:
    intervals = derive([reading(0, 1.0, export_kwh=5.0), reading(30, 1.0, export_kwh=6.0)])
    assert [i.export_kwh for i in intervals] == pytest.approx([0.5, 0.5])  # 1 kWh over 2 slots


def test_backwards_export_register_gives_no_export() -> None:
    intervals = derive([reading(0, 1.0, export_kwh=5.0), reading(15, 1.1, export_kwh=4.0)])
    assert [i.export_kwh for i in intervals] == [0.0]


def test_hourly_slots() -> None:
    intervals = derive([reading(0, 0.0), reading(120, 4.0)], interval=timedelta(hours=1))
    assert starts(intervals) == [T0, T0 + timedelta(hours=1)]
    assert imports(intervals) == pytest.approx([2.0, 2.0])


def test_one_assessment_per_reading_is_required() -> None:
    with pytest.raises(ValueError, match="one assessment per reading"):
        derive_intervals([reading(0, 1.0)], [], interval=QUARTER)


def test_interval_must_be_whole_seconds() -> None:
    with pytest.raises(ValueError, match="whole number of seconds"):
        derive([reading(0, 1.0), reading(30, 2.0)], interval=timedelta(seconds=0.5))


def test_a_long_history_gives_one_interval_between_each_pair_of_readings() -> None:
    # How fast: benchmarks/intervals.py (a test that times the wall clock fails on a busy machine).
    readings = [reading(15 * i, 0.1 * i) for i in range(100_000)]
    assessments = assess_sequence(readings, PROFILE, zero_streak=timedelta(hours=6))
    intervals = derive_intervals(readings, assessments, interval=QUARTER)
    assert len(intervals) == 99_999
    assert {i.quality for i in intervals} == {Quality.ACTUAL}
    assert sum(i.import_kwh for i in intervals) == pytest.approx(0.1 * 99_999)


# --- properties -------------------------------------------------------------------------------


def interpolated(readings: Sequence[Reading], at: datetime) -> float:
    """The import register at ``at``, interpolated linearly between readings."""
    times = [r.ts for r in readings]
    after = bisect.bisect_left(times, at)
    if times[after] == at:
        return readings[after].import_kwh or 0.0
    before, later = readings[after - 1], readings[after]
    assert before.import_kwh is not None and later.import_kwh is not None
    fraction = (at - before.ts) / (later.ts - before.ts)
    return before.import_kwh + fraction * (later.import_kwh - before.import_kwh)


@st.composite
def monotone_readings(draw: st.DrawFn, slots: int = 12) -> list[Reading]:
    """Readings from T0 to T0 + slots quarters at random seconds, within the meter's power."""
    span = slots * 900
    inner = draw(st.sets(st.integers(min_value=1, max_value=span - 1), max_size=40))
    seconds = [0, *sorted(inner), span]
    register = draw(st.floats(min_value=0.0, max_value=50_000.0))
    result = [Reading("m1", T0, import_kwh=register)]
    for earlier, later in pairwise(seconds):
        power_kw = draw(st.floats(min_value=0.0, max_value=MAX_TEST_POWER_KW))
        register += power_kw * (later - earlier) / 3600
        result.append(Reading("m1", T0 + timedelta(seconds=later), import_kwh=register))
    return result


@given(monotone_readings())
def test_energy_is_conserved_over_any_split(readings: list[Reading]) -> None:
    intervals = derive(readings)
    assert len(intervals) == 12
    total = readings[-1].import_kwh - readings[0].import_kwh  # type: ignore[operator]
    assert sum(imports(intervals)) == pytest.approx(total, rel=1e-9, abs=1e-6)


@given(monotone_readings())
def test_each_slot_is_its_pro_rata_share(readings: list[Reading]) -> None:
    for interval in derive(readings):
        end = interval.start + QUARTER
        share = interpolated(readings, end) - interpolated(readings, interval.start)
        assert interval.import_kwh == pytest.approx(share, rel=1e-9, abs=1e-6)


@given(monotone_readings(), st.randoms(use_true_random=False))
def test_any_arrival_order_gives_the_same_intervals(
    readings: list[Reading], shuffler: random.Random
) -> None:
    arrived = readings[:]
    shuffler.shuffle(arrived)
    assert derive(sorted(arrived, key=lambda r: r.ts)) == derive(readings)


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=3 * 900),
            st.floats(min_value=-20.0, max_value=20.0, allow_nan=False),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_no_interval_energy_is_negative(steps: list[tuple[int, float]]) -> None:
    # Steps backwards and forwards, within and beyond the meter's power: glitches, resets, spikes.
    seconds, register = 0, 100.0
    readings = [Reading("m1", T0, import_kwh=register, export_kwh=register)]
    for elapsed, step in steps:
        seconds += elapsed
        register = max(register + step, 0.0)
        ts = T0 + timedelta(seconds=seconds)
        readings.append(Reading("m1", ts, import_kwh=register, export_kwh=register))
    for interval in derive(readings):
        assert interval.import_kwh >= 0.0 and interval.export_kwh >= 0.0


@st.composite
def series_with_a_hole(draw: st.DrawFn) -> tuple[list[Reading], int]:
    """Aligned quarter-hour readings with monotone registers, and the index of an inner one."""
    count = draw(st.integers(min_value=3, max_value=30))
    register, readings = 10.0, []
    for i in range(count):
        readings.append(reading(15 * i, register))
        register += draw(st.floats(min_value=0.0, max_value=5.0))
    return readings, draw(st.integers(min_value=1, max_value=count - 2))


@given(series_with_a_hole(), st.sets(st.integers(min_value=0, max_value=29)))
def test_a_late_reading_replaces_estimates_on_both_sides(
    case: tuple[list[Reading], int], also_missing: set[int]
) -> None:
    full, hole = case
    # Other readings may be missing too, but not the hole's neighbours: the hole is one reading.
    dropped = {i for i in also_missing if 0 < i < len(full) - 1} - {hole - 1, hole + 1}
    dropped.add(hole)
    before = derive([r for i, r in enumerate(full) if i not in dropped])
    after = derive([r for i, r in enumerate(full) if i not in dropped - {hole}])
    beside = {full[hole - 1].ts: hole - 1, full[hole].ts: hole}
    before_by_start = {i.start: i for i in before}
    after_by_start = {i.start: i for i in after}
    for start, index in beside.items():
        assert before_by_start[start].quality is Quality.ESTIMATED
        assert after_by_start[start].quality is Quality.ACTUAL
        actual = full[index + 1].import_kwh - full[index].import_kwh  # type: ignore[operator]
        assert after_by_start[start].import_kwh == pytest.approx(actual)
