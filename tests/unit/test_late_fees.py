"""Late-payment fees, prompt-payment rebates and reminders per a tariff's payment terms."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from meterhub.billing.core.late_fees import (
    OpenBill,
    late_fee,
    prompt_payment_rebate,
    reminders_on,
)
from meterhub.billing.core.tariff import LateFee, PaymentTerms, load_tariff

ROOT = Path(__file__).resolve().parents[2]
# NEA domestic: 2% rebate within 7 days of the bill; 5% surcharge in the first 15 days after the
# due date, 10% up to day 25, 25% after (examples/tariffs/nea-domestic.yaml).
NEA = load_tariff(ROOT / "examples" / "tariffs" / "nea-domestic.yaml").versions[-1].payment_terms
DUE = date(2024, 6, 15)


def test_no_fee_when_paid_by_the_due_date() -> None:
    assert (
        late_fee(NEA, Decimal("1000.00"), DUE, [(DUE, Decimal("1000.00"))], date(2024, 7, 30)) == 0
    )


def test_late_fee_applies_after_the_due_date_at_the_step_reached() -> None:
    paid = [(date(2024, 6, 25), Decimal("1000.00"))]  # 10 days late: the 5% step
    assert late_fee(NEA, Decimal("1000.00"), DUE, paid, date(2024, 7, 1)) == Decimal("50.00")
    # 1000 * 5% = 50.00


def test_unpaid_bill_earns_the_step_for_its_delay_so_far() -> None:
    # On 2024-07-11 the bill is 26 days overdue: the 25% step.
    assert late_fee(NEA, Decimal("1234.56"), DUE, [], date(2024, 7, 11)) == Decimal("308.64")
    # 1234.56 * 25% = 308.64


def test_only_the_part_paid_late_bears_the_fee() -> None:
    paid = [(date(2024, 6, 10), Decimal("600.00")), (date(2024, 6, 20), Decimal("400.00"))]
    assert late_fee(NEA, Decimal("1000.00"), DUE, paid, date(2024, 7, 1)) == Decimal("20.00")
    # 400 * 5% = 20.00


def test_fixed_amount_fee_is_charged_once() -> None:
    terms = PaymentTerms(late_fees=[LateFee(after_days=0, amount=Decimal("25.00"))])
    paid = [(date(2024, 6, 20), Decimal("100.00")), (date(2024, 6, 30), Decimal("100.00"))]
    assert late_fee(terms, Decimal("200.00"), DUE, paid, date(2024, 7, 1)) == Decimal("25.00")


def test_prompt_payment_rebate_within_the_window() -> None:
    issued = date(2024, 6, 1)
    # rebate base: energy + fixed = 900.00; 2% = 18.00; the consumer pays 1000 - 18 on day 7.
    paid = [(date(2024, 6, 8), Decimal("982.00"))]
    assert prompt_payment_rebate(
        NEA, Decimal("900.00"), Decimal("1000.00"), issued, paid
    ) == Decimal("18.00")


def test_no_rebate_after_the_window_or_when_not_paid_in_full() -> None:
    issued = date(2024, 6, 1)
    late = [(date(2024, 6, 9), Decimal("1000.00"))]
    short = [(date(2024, 6, 3), Decimal("500.00"))]
    assert prompt_payment_rebate(NEA, Decimal("900.00"), Decimal("1000.00"), issued, late) == 0
    assert prompt_payment_rebate(NEA, Decimal("900.00"), Decimal("1000.00"), issued, short) == 0


def test_reminders_before_due_on_due_and_when_a_fee_step_starts() -> None:
    bills = [
        OpenBill("c1", "b1", date(2024, 6, 18), Decimal("100.00"), NEA),  # due in 3 days
        OpenBill("c2", "b2", date(2024, 6, 15), Decimal("200.00"), NEA),  # due today
        OpenBill("c3", "b3", date(2024, 5, 30), Decimal("300.00"), NEA),  # 16 days: 10% starts
        OpenBill("c4", "b4", date(2024, 6, 15), Decimal("0.00"), NEA),  # paid: nothing
        OpenBill("c5", "b5", date(2024, 6, 10), Decimal("50.00"), NEA),  # 5 days late: no step
    ]
    sent = reminders_on(date(2024, 6, 15), bills)
    assert [(r.consumer_id, r.kind, r.days_from_due) for r in sent] == [
        ("c1", "before_due", -3),
        ("c2", "due", 0),
        ("c3", "late_fee", 16),
    ]
