"""VEE rules: hard rejections on ingest and the assessment of a sorted sequence."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterhub.readings.model import Quality, Reading
from meterhub.readings.vee import (
    EXPORT_REGISTER_BACKWARDS,
    METER_RESET,
    NEGATIVE_REGISTER,
    NO_MEASUREMENT,
    NON_FINITE,
    REGISTER_GLITCH,
    REGISTER_JUMP,
    REGISTER_ROLLOVER,
    SPIKE,
    TS_IN_FUTURE,
    TS_TOO_OLD,
    VALUE_OUT_OF_RANGE,
    ZERO_STREAK,
    Assessment,
    MeterProfile,
    ReadingLimits,
    assess_sequence,
    check_reading,
    export_delta,
)

NOW = datetime(2026, 11, 24, 4, 30, tzinfo=UTC)
LIMITS = ReadingLimits()
T0 = datetime(2026, 11, 24, tzinfo=UTC)
QUARTER = timedelta(minutes=15)
# 1 phase * 230 V * 100 A = 23 kW, i.e. at most 5.75 kWh in 15 minutes.
SINGLE_PHASE = MeterProfile("m1", sanctioned_load_kw=5.0, phase=1, register_max_kwh=99999.999)
STREAK = timedelta(hours=6)


def reading(ts: datetime = NOW, /, **values: Any) -> Reading:
    return Reading(meter_id="m1", ts=ts, **values)


def series(*registers: float, **values: Any) -> list[Reading]:
    """Readings every 15 minutes from T0 with the given import registers."""
    return [reading(T0 + i * QUARTER, import_kwh=kwh, **values) for i, kwh in enumerate(registers)]


def assess(readings: list[Reading], profile: MeterProfile = SINGLE_PHASE) -> list[Assessment]:
    return assess_sequence(readings, profile, zero_streak=STREAK)


def deltas(assessments: list[Assessment]) -> list[float]:
    return [a.step.delta_kwh if a.step else math.nan for a in assessments]


# --- check_reading --------------------------------------------------------------------------


def test_clean_reading_passes() -> None:
    clean = reading(
        import_kwh=1234.5,
        export_kwh=0.0,
        import_kwh_by_tariff={"1": 800.0, "2": 434.5},
        power_w=812.0,
        voltage_v=229.8,
        current_a=3.9,
        pf=0.97,
        freq_hz=50.01,
    )
    assert check_reading(clean, now=NOW, limits=LIMITS) is None


def test_power_only_reading_is_a_measurement() -> None:
    assert check_reading(reading(power_w=-300.0), now=NOW, limits=LIMITS) is None


def test_future_timestamp_beyond_tolerance_is_rejected() -> None:
    ahead = reading(NOW + timedelta(minutes=5, seconds=1), import_kwh=1.0)
    rejection = check_reading(ahead, now=NOW, limits=LIMITS)
    assert rejection is not None and rejection.code == TS_IN_FUTURE


def test_clock_slightly_ahead_is_tolerated() -> None:
    ahead = reading(NOW + timedelta(minutes=5), import_kwh=1.0)
    assert check_reading(ahead, now=NOW, limits=LIMITS) is None


def test_timestamp_past_the_late_data_horizon_is_rejected() -> None:
    old = reading(NOW - timedelta(days=400, seconds=1), import_kwh=1.0)
    rejection = check_reading(old, now=NOW, limits=LIMITS)
    assert rejection is not None and rejection.code == TS_TOO_OLD


def test_late_data_within_the_horizon_is_accepted() -> None:
    late = reading(NOW - timedelta(days=399), import_kwh=1.0)
    assert check_reading(late, now=NOW, limits=LIMITS) is None


def test_reading_without_energy_or_power_is_rejected() -> None:
    rejection = check_reading(reading(voltage_v=230.0), now=NOW, limits=LIMITS)
    assert rejection is not None and rejection.code == NO_MEASUREMENT


@pytest.mark.parametrize("field", ["import_kwh", "export_kwh"])
def test_negative_register_is_rejected(field: str) -> None:
    rejection = check_reading(reading(**{field: -0.001}), now=NOW, limits=LIMITS)
    assert rejection is not None
    assert (rejection.code, rejection.field) == (NEGATIVE_REGISTER, field)


def test_negative_tariff_register_is_rejected() -> None:
    bad = reading(import_kwh=10.0, import_kwh_by_tariff={"1": 10.0, "2": -1.0})
    rejection = check_reading(bad, now=NOW, limits=LIMITS)
    assert rejection is not None
    assert (rejection.code, rejection.field) == (NEGATIVE_REGISTER, "import_kwh_by_tariff.2")


def test_register_of_eleven_digits_is_out_of_range() -> None:
    rejection = check_reading(reading(import_kwh=1e10), now=NOW, limits=LIMITS)
    assert rejection is not None
    assert (rejection.code, rejection.field) == (VALUE_OUT_OF_RANGE, "import_kwh")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("voltage_v", 500.1),
        ("voltage_v", -1.0),
        ("current_a", 1000.1),
        ("current_a", -0.1),
        ("pf", 1.01),
        ("pf", -1.01),
        ("freq_hz", 39.9),
        ("freq_hz", 70.1),
        ("power_w", 1e6 + 1),
        ("power_w", -1e6 - 1),
    ],
)
def test_value_outside_physical_bounds_is_rejected(field: str, value: float) -> None:
    rejection = check_reading(reading(import_kwh=1.0, **{field: value}), now=NOW, limits=LIMITS)
    assert rejection is not None
    assert (rejection.code, rejection.field) == (VALUE_OUT_OF_RANGE, field)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("voltage_v", 0.0),
        ("voltage_v", 500.0),
        ("pf", -1.0),
        ("pf", 1.0),
        ("freq_hz", 40.0),
        ("freq_hz", 70.0),
        ("current_a", 1000.0),
    ],
)
def test_values_on_the_bounds_are_accepted(field: str, value: float) -> None:
    assert check_reading(reading(import_kwh=1.0, **{field: value}), now=NOW, limits=LIMITS) is None


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    "field", ["import_kwh", "export_kwh", "power_w", "voltage_v", "current_a", "pf", "freq_hz"]
)
def test_non_finite_value_is_rejected(field: str, bad: float) -> None:
    values: dict[str, Any] = {"import_kwh": 1.0, field: bad}
    rejection = check_reading(reading(**values), now=NOW, limits=LIMITS)
    assert rejection is not None
    assert (rejection.code, rejection.field) == (NON_FINITE, field)


def test_non_finite_tariff_register_is_rejected() -> None:
    bad = reading(import_kwh=1.0, import_kwh_by_tariff={"1": math.nan})
    rejection = check_reading(bad, now=NOW, limits=LIMITS)
    assert rejection is not None
    assert (rejection.code, rejection.field) == (NON_FINITE, "import_kwh_by_tariff.1")


# --- assess_sequence: register steps ----------------------------------------------------------


def test_one_assessment_per_reading_in_order() -> None:
    assessments = assess(series(10.0, 10.5, 11.0))
    assert [a.quality for a in assessments] == [Quality.ACTUAL] * 3
    assert [a.step.kind if a.step else None for a in assessments] == ["first", "normal", "normal"]
    assert deltas(assessments) == pytest.approx([0.0, 0.5, 0.5])


def test_first_step_is_measured_against_itself() -> None:
    first = assess(series(10.0))[0]
    assert first.step is not None
    assert (first.step.delta_kwh, first.step.since) == (0.0, T0)


def test_reading_without_import_register_has_no_step() -> None:
    readings = [reading(T0, import_kwh=1.0), reading(T0 + QUARTER, power_w=100.0)]
    assert assess(readings)[1].step is None


def test_unsorted_input_is_refused() -> None:
    with pytest.raises(ValueError, match="sorted"):
        assess(list(reversed(series(1.0, 2.0))))


def test_rollover_at_99999_999() -> None:
    assessments = assess(series(99999.5, 0.7))
    rolled = assessments[1]
    assert rolled.flags == (REGISTER_ROLLOVER,)
    assert rolled.quality is Quality.ACTUAL
    assert rolled.step is not None and rolled.step.kind == "rollover"
    assert rolled.step.delta_kwh == pytest.approx(1.199)  # (99999.999 - 99999.5) + 0.7


def test_rollover_needs_the_previous_value_near_the_maximum() -> None:
    # 99999.999 - 98000 = 1999.999 kWh from the top: more than 1 % (1000 kWh), so not a wrap.
    rolled = assess(series(98000.0, 0.5))[1]
    assert REGISTER_ROLLOVER not in rolled.flags
    assert rolled.flags == (METER_RESET,)


def test_wrap_that_would_need_impossible_power_is_not_a_rollover() -> None:
    # (99999.999 - 99500) + 0.5 = 500.499 kWh in 15 min is far above 23 kW * 0.25 h = 5.75 kWh.
    step = assess(series(99500.0, 0.5))[1]
    assert step.flags == (METER_RESET,)


def test_meter_without_known_register_maximum_never_rolls_over() -> None:
    profile = MeterProfile("m1", sanctioned_load_kw=None, phase=1, register_max_kwh=None)
    assert assess(series(99999.5, 0.7), profile)[1].flags == (METER_RESET,)


def test_reset_to_near_zero_counts_energy_since_the_reset() -> None:
    reset = assess(series(1234.0, 0.4))[1]
    assert reset.flags == (METER_RESET,)
    assert reset.quality is Quality.ESTIMATED
    assert reset.step is not None and reset.step.delta_kwh == pytest.approx(0.4)


def test_large_drop_is_a_reset() -> None:
    # 1234 -> 3: the drop of 1231 kWh is more than half of 1234.
    reset = assess(series(1234.0, 3.0))[1]
    assert reset.flags == (METER_RESET,)
    assert reset.step is not None and reset.step.delta_kwh == pytest.approx(3.0)


def test_reset_to_an_impossible_level_counts_nothing() -> None:
    # 1234 -> 600 is a reset (drop > 50 %), but 600 kWh in 15 minutes is above 5.75 kWh.
    reset = assess(series(1234.0, 600.0))[1]
    assert reset.flags == (METER_RESET,)
    assert reset.step is not None and reset.step.delta_kwh == 0.0


def test_energy_continues_from_the_reset_value() -> None:
    assert deltas(assess(series(1234.0, 0.4, 0.9)))[2] == pytest.approx(0.5)  # 0.9 - 0.4


def test_small_backwards_step_is_a_glitch_counting_nothing() -> None:
    glitch = assess(series(100.0, 99.5))[1]
    assert glitch.flags == (REGISTER_GLITCH,)
    assert glitch.quality is Quality.SUSPECT
    assert glitch.step is not None and glitch.step.delta_kwh == 0.0


def test_glitch_does_not_create_energy() -> None:
    assessments = assess(series(100.0, 99.5, 100.2))
    recovered = assessments[2]
    assert recovered.quality is Quality.ACTUAL
    assert recovered.step is not None
    assert recovered.step.delta_kwh == pytest.approx(0.2)  # 100.2 - 100, not 100.2 - 99.5
    assert recovered.step.since == T0  # measured against the last trusted reading
    assert sum(deltas(assessments)) == pytest.approx(0.2)


def test_spike_is_flagged_and_not_counted() -> None:
    # 100 -> 110 in 15 min is 40 kW, above max(2 * 5 kW, 23 kW) = 23 kW.
    assessments = assess(series(100.0, 110.0, 100.5))
    spike = assessments[1]
    assert spike.flags == (SPIKE,)
    assert spike.quality is Quality.SUSPECT
    assert deltas(assessments) == pytest.approx([0.0, 0.0, 0.5])  # 100.5 - 100


def test_step_just_below_the_physical_maximum_is_normal() -> None:
    # 23 kW * 0.25 h = 5.75 kWh
    assert assess(series(100.0, 105.75))[1].flags == ()


def test_sanctioned_load_raises_the_maximum_when_larger() -> None:
    # max(2 * 20 kW, 23 kW) = 40 kW: 9 kWh in 15 min is 36 kW, plausible.
    profile = MeterProfile("m1", sanctioned_load_kw=20.0, phase=1, register_max_kwh=None)
    assert assess(series(100.0, 109.0), profile)[1].flags == ()


def test_three_phase_meter_allows_three_times_the_power() -> None:
    # 3 * 230 V * 100 A = 69 kW: 15 kWh in 15 min is 60 kW.
    profile = MeterProfile("m1", sanctioned_load_kw=None, phase=3, register_max_kwh=None)
    assert assess(series(100.0, 115.0), profile)[1].flags == ()


def test_power_above_the_maximum_is_a_spike() -> None:
    readings = [reading(T0, import_kwh=1.0), reading(T0 + QUARTER, import_kwh=1.1, power_w=30e3)]
    flagged = assess(readings)[1]
    assert flagged.flags == (SPIKE,)
    assert flagged.quality is Quality.SUSPECT


def test_register_that_stays_at_the_spiked_level_is_a_jump() -> None:
    # A meter swap: 100 -> 5000 is a spike; 5000.3 confirms the new level. The jump is not energy,
    # the 0.3 kWh after it is.
    assessments = assess(series(100.0, 5000.0, 5000.3, 5000.8))
    assert [a.flags for a in assessments] == [(), (SPIKE,), (REGISTER_JUMP,), ()]
    assert deltas(assessments) == pytest.approx([0.0, 0.0, 0.3, 0.5])
    assert assessments[2].quality is Quality.ESTIMATED


# --- zero streak ------------------------------------------------------------------------------


def flat_day(voltage_v: float | None) -> list[Reading]:
    # 25 readings every 15 min: 6 hours of an unchanged register.
    return [reading(T0 + i * QUARTER, import_kwh=50.0, voltage_v=voltage_v) for i in range(25)]


def test_zero_streak_under_voltage_is_flagged_from_the_threshold() -> None:
    flagged = [ZERO_STREAK in a.flags for a in assess(flat_day(voltage_v=231.0))]
    # The streak reaches 6 h at the 25th reading (24 * 15 min).
    assert flagged == [False] * 24 + [True]


def test_zero_streak_keeps_quality_actual() -> None:
    assert assess(flat_day(voltage_v=231.0))[-1].quality is Quality.ACTUAL


@pytest.mark.parametrize("voltage_v", [None, 0.0, 50.0])
def test_no_zero_streak_without_voltage(voltage_v: float | None) -> None:
    assert not any(ZERO_STREAK in a.flags for a in assess(flat_day(voltage_v)))


def test_consumption_breaks_the_zero_streak() -> None:
    readings = flat_day(voltage_v=231.0)
    readings[12] = reading(readings[12].ts, import_kwh=50.1, voltage_v=231.0)
    assert not any(ZERO_STREAK in a.flags for a in assess(readings))


# --- export -----------------------------------------------------------------------------------


def test_export_delta_is_the_register_difference() -> None:
    assert export_delta(reading(export_kwh=2.0), reading(export_kwh=2.75)) == pytest.approx(0.75)


def test_backwards_export_register_counts_nothing() -> None:
    assert export_delta(reading(export_kwh=2.0), reading(export_kwh=1.5)) == 0.0


def test_backwards_export_register_is_flagged() -> None:
    readings = [
        reading(T0, import_kwh=1.0, export_kwh=2.0),
        reading(T0 + QUARTER, import_kwh=1.1, export_kwh=1.5),
    ]
    flagged = assess(readings)[1]
    assert flagged.flags == (EXPORT_REGISTER_BACKWARDS,)
    assert flagged.export_step is not None and flagged.export_step.delta_kwh == 0.0


# --- determinism ------------------------------------------------------------------------------


@given(
    steps=st.lists(
        st.floats(min_value=-3.0, max_value=12.0, allow_nan=False), min_size=1, max_size=40
    ),
    seed=st.integers(),
)
def test_any_arrival_order_gives_the_same_assessment(steps: list[float], seed: int) -> None:
    registers = [100.0]
    for step in steps:
        registers.append(max(registers[-1] + step, 0.0))
    readings = series(*registers, voltage_v=230.0)
    shuffled = readings[:]
    random.Random(seed).shuffle(shuffled)
    assert assess(sorted(shuffled, key=lambda r: r.ts)) == assess(readings)


@given(
    steps=st.lists(
        st.floats(min_value=-3.0, max_value=12.0, allow_nan=False), min_size=1, max_size=40
    )
)
def test_counted_energy_is_never_negative(steps: list[float]) -> None:
    registers = [100.0]
    for step in steps:
        registers.append(max(registers[-1] + step, 0.0))
    assert all(delta >= 0.0 for delta in deltas(assess(series(*registers))))
