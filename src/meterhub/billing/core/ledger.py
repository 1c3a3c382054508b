"""The consumer ledger: entries in, balance, open items, arrears and ageing out. Pure.

An account is a list of signed entries: bills, late fees, prepaid usage and debit adjustments
are positive (the consumer owes more), payments, credit notes, rebates and credit adjustments
negative.
Nothing derived is stored: the balance is the sum of the entries, and which bill a payment
paid, what is still open, what is in arrears and how old it is are all worked out here from
the entries alone, so they can never disagree with each other.

Allocation: entries are replayed in time order. A credit pays the open debits oldest first
(by due date, then posting time); what it cannot place is an advance, and an advance pays the
next debit as soon as it is posted. So a partial payment leaves the rest of a bill open, an
advance payment becomes credit used by the next bill, and nothing is paid twice.

Money is ``Decimal`` throughout; entries are at the currency's minor unit (0.01) already, and
allocation only moves amounts around, so nothing here rounds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

EntryKind = Literal["bill", "payment", "adjustment", "credit_note", "late_fee", "rebate", "prepaid"]
ENTRY_KINDS: tuple[EntryKind, ...] = (
    "bill",
    "payment",
    "adjustment",
    "credit_note",
    "late_fee",
    "rebate",
    "prepaid",
)
ZERO = Decimal("0.00")

# Arrears by days past the due date. "0-30" holds debts 1..30 days overdue: a debt is in
# arrears from the day after it fell due.
BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-30", 1, 30),
    ("31-60", 31, 60),
    ("61-90", 61, 90),
    ("90+", 91, None),
)


@dataclass(frozen=True, slots=True)
class Entry:
    """One posting on a consumer's account. ``amount`` > 0 is a debit."""

    kind: EntryKind
    amount: Decimal
    ref: str  # the bill id, payment id, ... the entry comes from
    at: datetime
    due_on: date | None = None  # debits: when payment falls due (default: the posting day)
    description: str = ""

    @property
    def is_debit(self) -> bool:
        return self.amount > 0

    @property
    def due(self) -> date:
        return self.due_on if self.due_on is not None else self.at.date()


@dataclass(frozen=True, slots=True)
class Allocation:
    """``amount`` of credit ``credit_ref`` applied to debit ``debit_ref`` at ``at`` (the later
    of the two postings)."""

    credit_kind: EntryKind
    credit_ref: str
    debit_kind: EntryKind
    debit_ref: str
    amount: Decimal
    at: datetime


@dataclass(frozen=True, slots=True)
class OpenItem:
    kind: EntryKind
    ref: str
    due: date
    amount: Decimal  # the original debit
    open: Decimal  # what is still unpaid


@dataclass(frozen=True, slots=True)
class Account:
    """Everything the entries say about an account on a day."""

    as_of: date
    balance: Decimal  # > 0 owed by the consumer, < 0 in credit
    open_items: tuple[OpenItem, ...]
    unapplied_credit: Decimal  # advance payments and credits not yet used (>= 0)
    allocations: tuple[Allocation, ...]
    arrears: Decimal  # open amounts past their due date
    ageing: dict[str, Decimal] = field(default_factory=dict)  # bucket name -> open amount

    @property
    def open_amount(self) -> Decimal:
        return sum((item.open for item in self.open_items), ZERO)


def account(entries: Iterable[Entry], as_of: date) -> Account:
    """The account on ``as_of`` from the entries posted up to the end of that day."""
    posted = [entry for entry in entries if entry.at.date() <= as_of]
    items, unapplied, allocations = _replay(posted)
    open_items = tuple(item for item in items if item.open > 0)
    ageing = {name: ZERO for name, _, _ in BUCKETS}
    for item in open_items:
        overdue_days = (as_of - item.due).days
        bucket = _bucket(overdue_days)
        if bucket is not None:
            ageing[bucket] += item.open
    return Account(
        as_of=as_of,
        balance=sum((entry.amount for entry in posted), ZERO),
        open_items=open_items,
        unapplied_credit=unapplied,
        allocations=tuple(allocations),
        arrears=sum(ageing.values(), ZERO),
        ageing=ageing,
    )


def allocate(amount: Decimal, open_items: Sequence[OpenItem]) -> list[tuple[str, Decimal]]:
    """How ``amount`` would pay ``open_items``: oldest due first, never more than an item's
    open amount; what is left over is not listed (it becomes an advance)."""
    if amount < 0:
        raise ValueError("an amount to allocate is not negative")
    placed: list[tuple[str, Decimal]] = []
    left = amount
    for item in sorted(open_items, key=lambda item: item.due):
        if left <= 0:
            break
        share = min(left, item.open)
        if share > 0:
            placed.append((item.ref, share))
            left -= share
    return placed


def paid_towards(entries: Iterable[Entry], debit_ref: str) -> list[tuple[datetime, Decimal]]:
    """When and how much was applied to one debit (for late fees and rebates)."""
    _, _, allocations = _replay(list(entries))
    return [(a.at, a.amount) for a in allocations if a.debit_ref == debit_ref]


# ----------------------------------------------------------------------------- replay


@dataclass(slots=True)
class _Open:
    entry: Entry
    open: Decimal


def _replay(entries: list[Entry]) -> tuple[list[OpenItem], Decimal, list[Allocation]]:
    debits: list[_Open] = []
    credits: list[_Open] = []  # unused credit, oldest first
    allocations: list[Allocation] = []
    for entry in sorted(entries, key=lambda entry: entry.at):
        if entry.amount > 0:
            debit = _Open(entry, entry.amount)
            debits.append(debit)
            debits.sort(key=lambda item: (item.entry.due, item.entry.at))
            for credit in credits:
                _apply(credit, debit, entry.at, allocations)
        elif entry.amount < 0:
            credit = _Open(entry, -entry.amount)
            for debit in debits:
                _apply(credit, debit, entry.at, allocations)
            credits.append(credit)
        credits = [credit for credit in credits if credit.open > 0]
    items = [
        OpenItem(item.entry.kind, item.entry.ref, item.entry.due, item.entry.amount, item.open)
        for item in debits
    ]
    return items, sum((credit.open for credit in credits), ZERO), allocations


def _apply(credit: _Open, debit: _Open, at: datetime, allocations: list[Allocation]) -> None:
    share = min(credit.open, debit.open)
    if share <= 0:
        return
    credit.open -= share
    debit.open -= share
    allocations.append(
        Allocation(
            credit.entry.kind, credit.entry.ref, debit.entry.kind, debit.entry.ref, share, at
        )
    )


def _bucket(overdue_days: int) -> str | None:
    for name, low, high in BUCKETS:
        if overdue_days >= low and (high is None or overdue_days <= high):
            return name
    return None
