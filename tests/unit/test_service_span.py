"""The days of a period a postpaid bill covers: all of them, or fewer after a move-in or a
conversion to prepaid inside the period."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from meterhub.billing.core.service_span import service_span

KTM = ZoneInfo("Asia/Kathmandu")
FEB, MAR = date(2026, 2, 1), date(2026, 3, 1)


def ktm(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, 2, day, hour, minute, tzinfo=KTM).astimezone(UTC)


def test_no_move_in_and_no_prepaid_is_the_whole_period() -> None:
    span = service_span(FEB, MAR, KTM)
    assert span is not None and span.whole
    assert (span.start, span.end) == (FEB, MAR)
    assert span.first == ktm(1)


def test_a_move_in_part_way_through_a_day_counts_that_day() -> None:
    span = service_span(FEB, MAR, KTM, supplied_from=ktm(15, 10, 30))
    assert span is not None and not span.whole
    assert (span.start, span.end) == (date(2026, 2, 15), MAR)
    assert span.first == ktm(15, 10, 30)  # intervals before the supply began do not count


def test_going_prepaid_at_local_midnight_ends_the_bill_the_day_before() -> None:
    span = service_span(FEB, MAR, KTM, prepaid_from=ktm(15))
    assert span is not None
    assert (span.start, span.end) == (FEB, date(2026, 2, 15))
    assert span.last == ktm(15)


def test_going_prepaid_during_a_day_bills_that_day_up_to_the_instant() -> None:
    span = service_span(FEB, MAR, KTM, prepaid_from=ktm(15, 9, 45))
    assert span is not None
    assert (span.start, span.end) == (FEB, date(2026, 2, 16))
    assert span.last == ktm(15, 9, 45)


def test_prepaid_before_the_period_leaves_nothing_to_bill() -> None:
    assert service_span(FEB, MAR, KTM, prepaid_from=ktm(1)) is None
    assert service_span(FEB, MAR, KTM, prepaid_from=datetime(2025, 12, 1, tzinfo=UTC)) is None


def test_a_supply_beginning_after_the_period_leaves_nothing_to_bill() -> None:
    assert service_span(FEB, MAR, KTM, supplied_from=datetime(2026, 3, 5, tzinfo=UTC)) is None


def test_move_in_and_prepaid_in_the_same_period_bill_the_days_between() -> None:
    span = service_span(FEB, MAR, KTM, supplied_from=ktm(5, 12), prepaid_from=ktm(20))
    assert span is not None
    assert (span.start, span.end) == (date(2026, 2, 5), date(2026, 2, 20))
