"""Billing periods and the schedule: which period a date falls due for, by cycle day."""

from __future__ import annotations

from datetime import date

import pytest

from meterhub.billing.core.numbering import format_number
from meterhub.billing.jobs.runs import due_periods, latest_period, period_dates


def test_period_runs_cycle_day_to_cycle_day() -> None:
    assert period_dates("2026-02") == (date(2026, 2, 1), date(2026, 3, 1))
    assert period_dates("2026-02", 5) == (date(2026, 2, 5), date(2026, 3, 5))
    assert period_dates("2026-12", 28) == (date(2026, 12, 28), date(2027, 1, 28))


@pytest.mark.parametrize("bad", ["2026", "2026-13", "26-02x", ""])
def test_period_names_are_checked(bad: str) -> None:
    with pytest.raises(ValueError):
        period_dates(bad)


def test_cycle_day_must_exist_in_every_month() -> None:
    with pytest.raises(ValueError, match="cycle day"):
        period_dates("2026-02", 29)


@pytest.mark.parametrize(
    ("today", "cycle_day", "period"),
    [
        (date(2026, 3, 1), 1, "2026-02"),  # the cycle day: February has just ended
        (date(2026, 3, 31), 1, "2026-02"),
        (date(2026, 3, 4), 5, "2026-01"),  # 2026-02 runs to 2026-03-05: not over yet
        (date(2026, 3, 5), 5, "2026-02"),
        (date(2026, 1, 5), 5, "2025-12"),  # over the year end
        (date(2026, 1, 4), 5, "2025-11"),
    ],
)
def test_latest_period_is_the_one_that_ended(today: date, cycle_day: int, period: str) -> None:
    assert latest_period(today, cycle_day) == period
    assert period_dates(period, cycle_day)[1] <= today


def test_due_periods_skip_a_finished_run() -> None:
    assert due_periods(date(2026, 3, 5), 5, set()) == ["2026-02"]
    assert due_periods(date(2026, 3, 5), 5, {"2026-02"}) == []


def test_bill_numbers_are_zero_padded_per_utility_and_year() -> None:
    assert format_number("MH", 2026, 123) == "MH-2026-000123"
