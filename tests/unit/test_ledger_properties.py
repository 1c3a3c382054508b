"""Ledger invariants over random accounts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from meterhub.billing.core.ledger import Entry, OpenItem, account, allocate

START = datetime(2024, 1, 1, tzinfo=UTC)
cents = st.integers(min_value=1, max_value=10_000_000).map(lambda c: Decimal(c).scaleb(-2))


@st.composite
def entries(draw: st.DrawFn) -> list[Entry]:
    out = []
    for index in range(draw(st.integers(min_value=0, max_value=25))):
        amount = draw(cents)
        moment = START + timedelta(hours=draw(st.integers(min_value=0, max_value=24 * 400)))
        if draw(st.booleans()):
            due = moment.date() + timedelta(days=draw(st.integers(min_value=0, max_value=30)))
            out.append(Entry("bill", amount, f"b{index}", moment, due))
        else:
            out.append(Entry("payment", -amount, f"p{index}", moment))
    return out


as_of = st.dates(min_value=date(2023, 12, 1), max_value=date(2025, 6, 1))


@given(entries(), as_of)
def test_sum_of_entries_is_the_balance(items: list[Entry], day: date) -> None:
    acc = account(items, day)
    posted = sum((e.amount for e in items if e.at.date() <= day), Decimal(0))
    assert acc.balance == posted
    assert acc.balance == acc.open_amount - acc.unapplied_credit


@given(entries(), as_of)
def test_ageing_buckets_sum_to_arrears(items: list[Entry], day: date) -> None:
    acc = account(items, day)
    assert sum(acc.ageing.values(), Decimal(0)) == acc.arrears
    assert acc.arrears <= acc.open_amount


@given(entries(), as_of)
def test_allocations_never_exceed_the_payment_nor_the_bill(items: list[Entry], day: date) -> None:
    acc = account(items, day)
    by_ref = {e.ref: abs(e.amount) for e in items}
    per_credit: dict[str, Decimal] = {}
    per_debit: dict[str, Decimal] = {}
    for a in acc.allocations:
        assert a.amount > 0
        per_credit[a.credit_ref] = per_credit.get(a.credit_ref, Decimal(0)) + a.amount
        per_debit[a.debit_ref] = per_debit.get(a.debit_ref, Decimal(0)) + a.amount
    assert all(total <= by_ref[ref] for ref, total in per_credit.items())
    assert all(total <= by_ref[ref] for ref, total in per_debit.items())
    # Credit is only left unused when no bill is open.
    assert acc.unapplied_credit == 0 or acc.open_amount == 0


@given(
    cents,
    st.lists(st.tuples(cents, st.integers(min_value=0, max_value=400)), max_size=10),
)
def test_allocate_stays_within_the_amount_and_each_open_item(
    amount: Decimal, opens: list[tuple[Decimal, int]]
) -> None:
    items = [
        OpenItem("bill", f"b{i}", date(2024, 1, 1) + timedelta(days=d), o, o)
        for i, (o, d) in enumerate(opens)
    ]
    placed = allocate(amount, items)
    assert sum((share for _, share in placed), Decimal(0)) <= amount
    limits = {item.ref: item.open for item in items}
    assert all(0 < share <= limits[ref] for ref, share in placed)
