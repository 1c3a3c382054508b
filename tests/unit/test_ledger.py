"""The consumer ledger: balance, open bills, allocation, arrears and ageing from entries."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from meterhub.billing.core.ledger import Entry, OpenItem, account, allocate, paid_towards


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=10, tzinfo=UTC)


def bill(ref: str, amount: str, issued: str, due: str) -> Entry:
    return Entry("bill", Decimal(amount), ref, at(issued), date.fromisoformat(due))


def payment(ref: str, amount: str, day: str) -> Entry:
    return Entry("payment", -Decimal(amount), ref, at(day))


def test_partial_payment_leaves_the_rest_of_the_bill_open() -> None:
    entries = [
        bill("b1", "1000.00", "2024-06-01", "2024-06-15"),
        payment("p1", "400.00", "2024-06-05"),
    ]
    acc = account(entries, date(2024, 6, 10))
    assert [(item.ref, item.open) for item in acc.open_items] == [("b1", Decimal("600.00"))]
    assert acc.balance == Decimal("600.00")  # 1000 - 400


def test_advance_payment_becomes_credit_used_by_the_next_bill() -> None:
    entries = [
        payment("p1", "500.00", "2024-05-20"),
        bill("b1", "350.00", "2024-06-01", "2024-06-15"),
    ]
    before = account(entries, date(2024, 5, 31))
    assert before.unapplied_credit == Decimal("500.00")
    assert before.balance == Decimal("-500.00")
    after = account(entries, date(2024, 6, 1))
    assert after.open_items == ()
    assert after.unapplied_credit == Decimal("150.00")  # 500 - 350
    assert [(a.credit_ref, a.debit_ref, a.amount) for a in after.allocations] == [
        ("p1", "b1", Decimal("350.00"))
    ]


def test_a_payment_pays_the_oldest_bill_first() -> None:
    entries = [
        bill("b1", "300.00", "2024-04-01", "2024-04-15"),
        bill("b2", "200.00", "2024-05-01", "2024-05-15"),
        payment("p1", "400.00", "2024-05-20"),
    ]
    acc = account(entries, date(2024, 5, 20))
    assert [(a.debit_ref, a.amount) for a in acc.allocations] == [
        ("b1", Decimal("300.00")),
        ("b2", Decimal("100.00")),
    ]
    assert [(item.ref, item.open) for item in acc.open_items] == [("b2", Decimal("100.00"))]


def test_arrears_are_open_amounts_past_due_aged_by_days_overdue() -> None:
    entries = [
        bill("b1", "100.00", "2024-01-01", "2024-01-15"),  # 105 days overdue on 2024-04-29
        bill("b2", "200.00", "2024-03-01", "2024-03-15"),  # 45 days overdue
        bill("b3", "300.00", "2024-04-20", "2024-05-04"),  # not yet due
    ]
    acc = account(entries, date(2024, 4, 29))
    assert acc.arrears == Decimal("300.00")  # 100 + 200; b3 is not due
    assert acc.ageing == {
        "0-30": Decimal("0.00"),
        "31-60": Decimal("200.00"),
        "61-90": Decimal("0.00"),
        "90+": Decimal("100.00"),
    }
    assert acc.balance == Decimal("600.00")


def test_a_bill_is_in_arrears_from_the_day_after_its_due_date() -> None:
    entries = [bill("b1", "100.00", "2024-01-01", "2024-01-15")]
    assert account(entries, date(2024, 1, 15)).arrears == Decimal("0.00")
    assert account(entries, date(2024, 1, 16)).ageing["0-30"] == Decimal("100.00")


def test_credit_note_and_late_fee_move_the_balance() -> None:
    entries = [
        bill("b1", "100.00", "2024-01-01", "2024-01-15"),
        Entry("late_fee", Decimal("5.00"), "b1", at("2024-01-20")),
        Entry("credit_note", Decimal("-20.00"), "adj-1", at("2024-01-21")),
    ]
    assert account(entries, date(2024, 1, 31)).balance == Decimal("85.00")  # 100 + 5 - 20


def test_allocate_never_exceeds_open_amounts_and_keeps_the_rest() -> None:
    items = [
        OpenItem("bill", "b2", date(2024, 2, 15), Decimal("50.00"), Decimal("50.00")),
        OpenItem("bill", "b1", date(2024, 1, 15), Decimal("80.00"), Decimal("30.00")),
    ]
    assert allocate(Decimal("100.00"), items) == [
        ("b1", Decimal("30.00")),
        ("b2", Decimal("50.00")),
    ]


def test_paid_towards_lists_when_a_bill_was_paid() -> None:
    entries = [
        bill("b1", "100.00", "2024-01-01", "2024-01-15"),
        payment("p1", "60.00", "2024-01-10"),
        payment("p2", "40.00", "2024-01-20"),
    ]
    assert paid_towards(entries, "b1") == [
        (at("2024-01-10"), Decimal("60.00")),
        (at("2024-01-20"), Decimal("40.00")),
    ]
