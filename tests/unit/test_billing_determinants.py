"""Determinants from 15-minute intervals in the utility's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from meterhub.billing.core.determinants import compute_determinants
from meterhub.billing.core.tariff import Tariff, parse_tariff
from meterhub.readings.intervals import Interval
from meterhub.readings.model import Quality


def tariff(**top: Any) -> Tariff:
    return parse_tariff(
        {
            "schema": "meterhub.tariff/v1",
            "id": "t",
            "name": "t",
            "currency": "XXX",
            "timezone": top.pop("timezone", "UTC"),
            "source": {"utility": "t", "document": "t", "date": "2024-01-01"},
            "versions": [
                {
                    "effective_from": "2020-01-01",
                    "energy": [{"name": "e", "kind": "flat", "rate": "1"}],
                }
            ],
            **top,
        }
    )


def quarter_hours(start: datetime, count: int, kwh: float = 0.25) -> list[Interval]:
    return [
        Interval("m", start + i * timedelta(minutes=15), 900, kwh, 0.0, Quality.ACTUAL)
        for i in range(count)
    ]


def test_weekday_weekend_and_holiday_windows() -> None:
    t = tariff(
        time_of_use={
            "windows": [
                {"name": "peak", "start": "17:00", "end": "20:00", "day_types": ["weekday"]},
                {"name": "night", "start": "22:00", "end": "06:00"},
            ],
            "default_window": "shoulder",
        },
        holidays={"country": "US", "subdivision": "CA"},
        timezone="America/Los_Angeles",
    )
    # 3 July 2024 (Wednesday), 4 July (Independence Day), 6 July (Saturday): 1 kW all day.
    days = [date(2024, 7, 3), date(2024, 7, 4), date(2024, 7, 6)]
    intervals = []
    for day in days:
        local_midnight = datetime(day.year, day.month, day.day, tzinfo=t.zone)
        intervals += quarter_hours(local_midnight.astimezone(UTC), 96)
    d = compute_determinants(intervals, t, date(2024, 7, 3), date(2024, 7, 7))
    # Peak only on the weekday: 3 h. Night 22:00-06:00 every day: 8 h * 3. Shoulder: the rest.
    assert d.energy_by_bin == {
        ("all", "peak"): Decimal("3.000000"),
        ("all", "night"): Decimal("24.000000"),
        ("all", "shoulder"): Decimal("45.000000"),  # 72 - 3 - 24
    }
    assert d.energy_by_day_type == {
        "weekday": Decimal("24.000000"),
        "holiday": Decimal("24.000000"),
        "weekend": Decimal("24.000000"),
    }
    assert d.days == 4  # the period, not the days with data


def test_max_demand_on_local_half_hours_in_kathmandu() -> None:
    t = tariff(timezone="Asia/Kathmandu")
    # Local 10:15-10:45 (+05:45) straddles two local half hours: 04:30-05:00 UTC.
    start = datetime(2024, 6, 1, 4, 30, tzinfo=UTC)
    intervals = [
        Interval("m", start, 900, 2.0, 0.0, Quality.ACTUAL),  # local 10:15
        Interval("m", start + timedelta(minutes=15), 900, 1.0, 0.0, Quality.ESTIMATED),
    ]
    d = compute_determinants(intervals, t, date(2024, 6, 1), date(2024, 6, 2))
    assert d.max_demand_kw[15] == Decimal("8.000")  # 2 kWh in 15 minutes
    # local 10:00-10:30 holds 2 kWh, 10:30-11:00 holds 1: 2 kWh / 0.5 h = 4 kW
    assert d.max_demand_kw[30] == Decimal("4.000")
    assert d.max_demand_kw[60] == Decimal("3.000")  # local 10:00-11:00
    assert d.estimated_intervals == 1


def test_intervals_outside_the_local_period_are_left_out() -> None:
    t = tariff(timezone="Asia/Kathmandu")
    # Local 1 June starts at 18:15 UTC on 31 May.
    intervals = quarter_hours(datetime(2024, 5, 31, 18, 0, tzinfo=UTC), 3)
    d = compute_determinants(intervals, t, date(2024, 6, 1), date(2024, 6, 2))
    assert d.intervals == 2
    assert d.import_kwh == Decimal("0.500000")


def test_seasons_wrapping_the_year() -> None:
    t = tariff(
        seasons=[
            {"name": "summer", "start": "06-01", "end": "09-30"},
            {"name": "winter", "start": "10-01", "end": "05-31"},
        ]
    )
    intervals = quarter_hours(datetime(2024, 9, 30, tzinfo=UTC), 192)
    d = compute_determinants(intervals, t, date(2024, 9, 30), date(2024, 10, 2))
    assert d.energy_by_bin == {
        ("summer", "all"): Decimal("24.000000"),
        ("winter", "all"): Decimal("24.000000"),
    }
    assert d.days_by_season == {"summer": 1, "winter": 1}
