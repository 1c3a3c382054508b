"""Prepaid core: interval pricing on a tariff, warning crossings, the disconnection window."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterhub.billing.core.calculate import calculate_bill
from meterhub.billing.core.determinants import compute_determinants
from meterhub.billing.core.prepaid import (
    DisconnectPolicy,
    IntervalPricer,
    crossed_levels,
    may_disconnect,
    supply_action,
)
from meterhub.billing.core.tariff import Tariff, TariffGap, parse_tariff
from meterhub.readings.intervals import Interval
from meterhub.readings.model import Quality

KATHMANDU = ZoneInfo("Asia/Kathmandu")
SOURCE = {"utility": "Test utility", "document": "test schedule", "date": "2026-01-01"}


def tariff(energy: list[dict[str, Any]], **extra: Any) -> Tariff:
    return parse_tariff(
        {
            "schema": "meterhub.tariff/v1",
            "id": "test",
            "name": "test",
            "currency": "NPR",
            "timezone": "Asia/Kathmandu",
            "source": SOURCE,
            "versions": [{"effective_from": "2026-01-01", "energy": energy, **extra}],
        }
    )


FLAT = [{"name": "energy", "kind": "flat", "rate": "10.00"}]


def day_of_intervals(day: date, kwh: float) -> list[Interval]:
    start = datetime(day.year, day.month, day.day, tzinfo=KATHMANDU).astimezone(UTC)
    return [
        Interval("m1", start + timedelta(minutes=15 * i), 900, kwh, 0.0, Quality.ACTUAL)
        for i in range(96)
    ]


def test_a_day_of_intervals_draws_down_energy_times_rate() -> None:
    pricer = IntervalPricer(tariff(FLAT))
    charges = [pricer.price(i) for i in day_of_intervals(date(2026, 3, 2), 0.25)]
    # 96 intervals * 0.25 kWh = 24 kWh; 24 * 10.00 = 240.00
    assert len(charges) == 96
    assert sum(c.amount for c in charges) == Decimal("240.000000")
    assert {c.amount for c in charges} == {Decimal("2.500000")}


def test_time_of_use_intervals_are_priced_at_their_window_rate() -> None:
    tou = parse_tariff(
        {
            "schema": "meterhub.tariff/v1",
            "id": "tou",
            "name": "tou",
            "currency": "NPR",
            "timezone": "Asia/Kathmandu",
            "source": SOURCE,
            "time_of_use": {
                "windows": [{"name": "peak", "start": "17:00", "end": "23:00"}],
                "default_window": "offpeak",
            },
            "versions": [
                {
                    "effective_from": "2026-01-01",
                    "energy": [
                        {
                            "name": "energy",
                            "kind": "tou",
                            "rates": [
                                {"window": "peak", "rate": "12"},
                                {"window": "offpeak", "rate": "8"},
                            ],
                        }
                    ],
                }
            ],
        }
    )
    pricer = IntervalPricer(tou)
    charges = [pricer.price(i) for i in day_of_intervals(date(2026, 3, 2), 1.0)]
    # 24 peak quarter hours (17:00-23:00) * 1 kWh * 12 + 72 off-peak * 1 kWh * 8 = 288 + 576
    assert sum(c.amount for c in charges) == Decimal("864")
    at_1800 = datetime(2026, 3, 2, 18, tzinfo=KATHMANDU)
    assert next(c for c in charges if c.interval_start == at_1800).amount == Decimal("12")


def test_telescopic_slabs_continue_from_the_month_so_far_and_taxes_follow() -> None:
    slabs = [
        {
            "name": "energy",
            "kind": "telescopic",
            "slabs": [{"up_to": "20", "rate": "4"}, {"rate": "6"}],
        }
    ]
    taxed = tariff(slabs, taxes=[{"name": "vat", "percent": "10", "applies_to": ["energy"]}])
    pricer = IntervalPricer(taxed, charged_kwh_by_day={date(2026, 3, 1): Decimal(19)})
    start = datetime(2026, 3, 10, 12, tzinfo=KATHMANDU).astimezone(UTC)
    charge = pricer.price(Interval("m1", start, 900, 2.0, 0.0, Quality.ACTUAL))
    # 19 kWh used this month: 1 kWh at 4 + 1 kWh at 6 = 10; VAT 10% = 1 -> 11
    assert charge.amount == Decimal("11")
    after = pricer.price(Interval("m1", start + timedelta(minutes=15), 900, 1.0, 0, Quality.ACTUAL))
    assert after.amount == Decimal("6.6")  # 1 kWh at 6, plus 10%


def test_no_price_for_the_date_is_an_error_never_a_zero() -> None:
    pricer = IntervalPricer(tariff(FLAT))
    before = datetime(2025, 12, 1, tzinfo=UTC)
    with pytest.raises(TariffGap):
        pricer.price(Interval("m1", before, 900, 1.0, 0.0, Quality.ACTUAL))


LEVELS = [Decimal(200), Decimal(50)]


def test_levels_crossed_downward_are_warned_highest_first() -> None:
    assert crossed_levels(Decimal(300), Decimal(40), LEVELS) == [Decimal(200), Decimal(50)]
    assert crossed_levels(Decimal(199), Decimal(150), LEVELS) == []  # already below 200
    assert crossed_levels(Decimal(40), Decimal(300), LEVELS) == []  # a top-up warns nothing


@given(st.lists(st.integers(min_value=-300, max_value=300), min_size=1, max_size=40))
def test_each_level_is_warned_once_per_crossing(steps: list[int]) -> None:
    balance, path = Decimal(250), [Decimal(250)]
    warned: dict[Decimal, int] = {level: 0 for level in LEVELS}
    for step in steps:
        after = balance + step
        for level in crossed_levels(balance, after, LEVELS):
            warned[level] += 1
        balance = after
        path.append(balance)
    for level in LEVELS:
        # A crossing: the balance was at or above the level and then below it.
        crossings = sum(1 for a, b in pairwise(path) if a >= level > b)
        assert warned[level] == crossings


POLICY = DisconnectPolicy(
    KATHMANDU, time(9), time(16), frozenset({0, 1, 2, 3, 4}), frozenset({date(2026, 3, 3)})
)


def test_disconnection_only_on_working_days_inside_the_window() -> None:
    # 2026-03-02 is a Monday; 2026-03-03 is in the policy's holidays.
    assert not may_disconnect(datetime(2026, 3, 2, 2, tzinfo=KATHMANDU), POLICY)  # 02:00
    assert may_disconnect(datetime(2026, 3, 2, 9, tzinfo=KATHMANDU), POLICY)
    assert not may_disconnect(datetime(2026, 3, 2, 16, tzinfo=KATHMANDU), POLICY)
    assert not may_disconnect(datetime(2026, 3, 3, 10, tzinfo=KATHMANDU), POLICY)  # holiday
    assert not may_disconnect(datetime(2026, 3, 7, 10, tzinfo=KATHMANDU), POLICY)  # Saturday


def test_supply_action_disconnects_at_zero_and_reconnects_when_positive_at_any_hour() -> None:
    night = datetime(2026, 3, 2, 2, tzinfo=KATHMANDU)
    morning = datetime(2026, 3, 2, 10, tzinfo=KATHMANDU)
    assert supply_action(Decimal(0), "connected", night, POLICY) is None  # waits
    assert supply_action(Decimal(0), "connected", morning, POLICY) == "disconnect"
    assert supply_action(Decimal("0.01"), "connected", morning, POLICY) is None
    assert supply_action(Decimal(5), "disconnect_requested", night, POLICY) == "reconnect"
    assert supply_action(Decimal(-1), "disconnect_requested", morning, POLICY) is None


# ----------------------------------------------------------------------------- same as a bill

MARCH = date(2026, 3, 1)


@st.composite
def energy_charges(draw: st.DrawFn) -> list[dict[str, Any]]:
    """One energy charge priced by each way a bill prices energy, with whole rates."""
    rate = st.integers(min_value=1, max_value=30).map(str)
    kind = draw(st.sampled_from(["flat", "telescopic", "tou"]))
    if kind == "flat":
        return [{"name": "energy", "kind": "flat", "rate": draw(rate)}]
    if kind == "tou":
        rates = [{"window": w, "rate": draw(rate)} for w in ("peak", "offpeak")]
        return [{"name": "energy", "kind": "tou", "rates": rates}]
    limits = sorted(draw(st.sets(st.integers(min_value=1, max_value=150), min_size=1, max_size=3)))
    slabs = [{"up_to": str(limit), "rate": draw(rate)} for limit in limits]
    return [{"name": "energy", "kind": "telescopic", "slabs": [*slabs, {"rate": draw(rate)}]}]


@st.composite
def energy_taxes(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Up to two taxes: on energy, and on energy or on the first tax."""
    percent = st.integers(min_value=0, max_value=25).map(str)
    taxes: list[dict[str, Any]] = []
    if draw(st.booleans()):
        taxes.append({"name": "vat", "percent": draw(percent), "applies_to": ["energy"]})
        if draw(st.booleans()):
            on = draw(st.sampled_from([["energy"], ["vat"], ["energy", "vat"]]))
            taxes.append({"name": "levy", "percent": draw(percent), "applies_to": on})
    return taxes


@given(
    energy=energy_charges(),
    taxes=energy_taxes(),
    days=st.integers(min_value=1, max_value=3),
    hundredths=st.lists(st.integers(min_value=0, max_value=400), min_size=72, max_size=72),
)
def test_prepaid_charges_of_a_period_add_up_to_its_bill(
    energy: list[dict[str, Any]], taxes: list[dict[str, Any]], days: int, hundredths: list[int]
) -> None:
    # Charged from the first of the month, the account's slabs stand where a bill's for the same
    # days do (a bill's cycle is then its own days: monthly limits unscaled). Whole rates, kWh in
    # hundredths and whole percentages keep every amount within six decimals, the precision of a
    # charge, so the two must agree to the last digit (the tariff rounds lines to six places).
    priced = parse_tariff(
        {
            "schema": "meterhub.tariff/v1",
            "id": "same",
            "name": "same",
            "currency": "NPR",
            "timezone": "Asia/Kathmandu",
            "source": SOURCE,
            "time_of_use": {
                "windows": [{"name": "peak", "start": "17:00", "end": "23:00"}],
                "default_window": "offpeak",
            },
            "rounding": {"line": "0.000001", "total": "0.000001"},
            "versions": [{"effective_from": "2026-01-01", "energy": energy, "taxes": taxes}],
        }
    )
    first = datetime(2026, 3, 1, tzinfo=KATHMANDU).astimezone(UTC)
    intervals = [
        Interval("m1", first + timedelta(hours=hour), 3600, kwh / 100, 0.0, Quality.ACTUAL)
        for hour, kwh in enumerate(hundredths[: 24 * days])
    ]
    pricer = IntervalPricer(priced)
    charged = sum((pricer.price(interval).amount for interval in intervals), Decimal(0))
    end = MARCH + timedelta(days=days)
    bill = calculate_bill(compute_determinants(intervals, priced, MARCH, end), priced)
    assert charged == bill.total
