"""Which reminder a bill gets when the daily job runs, and what the reminder messages say."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from meterhub.billing.core.late_fees import OpenBill, latest_reminders, reminder_id, terms_of
from meterhub.billing.core.tariff import LateFee, PaymentTerms
from meterhub.notify.templates import render

DUE = date(2024, 6, 15)
TERMS = PaymentTerms(
    late_fees=[
        LateFee(after_days=0, percent=Decimal(5)),
        LateFee(after_days=15, percent=Decimal(10)),
    ]
)
BILL = OpenBill("c1", "7", DUE, Decimal("1000.00"), TERMS)


def kinds(day: date, catch_up_days: int = 2) -> list[str]:
    return [reminder_id(r) for r in latest_reminders(day, [BILL], catch_up_days=catch_up_days)]


def test_on_a_reminder_day_that_days_reminder_is_due() -> None:
    assert kinds(DUE - timedelta(days=3)) == ["7:before_due:-3"]
    assert kinds(DUE) == ["7:due:0"]
    assert kinds(DUE + timedelta(days=16)) == ["7:late_fee:16"]


def test_a_missed_reminder_day_is_caught_up_within_the_window_only() -> None:
    assert kinds(DUE - timedelta(days=1)) == ["7:before_due:-3"]  # two days late: still sent
    assert kinds(DUE + timedelta(days=2)) == ["7:late_fee:1"]  # the newest in the window wins
    assert kinds(DUE + timedelta(days=5)) == []  # too old to help


def test_a_paid_bill_gets_no_reminder() -> None:
    paid = OpenBill("c1", "7", DUE, Decimal("0.00"), TERMS)
    assert latest_reminders(DUE, [paid]) == []


def test_terms_of_an_unknown_tariff_are_none() -> None:
    assert terms_of({}, "nea", DUE) is None


def test_the_reminder_sms_fits_one_message_and_names_the_fee() -> None:
    _, text = render(
        "reminder", "sms", name="Asha", consumer_id="C-000123", number="MH-2026-000123",
        amount="12345.67", currency="NPR", due_date="2026-03-16", step="late_fee",
        fee="10% of the overdue amount", link="",
    )  # fmt: skip
    assert len(text) <= 160
    assert "MH-2026-000123" in text and "10% of the overdue amount" in text
