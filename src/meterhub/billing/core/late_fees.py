"""Late-payment fees, prompt-payment rebates and payment reminders from a tariff's
``payment_terms``. Pure: dates and amounts in, amounts and reminders out.

Late fees (``payment_terms.late_fees``): each rule is a step ``{after_days, percent|amount}``.
A sum paid ``d`` days after the due date (or still unpaid ``d`` days after it) bears the
highest step with ``after_days < d``; steps are not cumulative. That is how the Nepal
Electricity Authority publishes its surcharge (5 % in the first 15 days after the due date,
10 % up to day 25, 25 % after), and a single ``{after_days: 0, percent: ...}`` step is the
common one-off late fee. The fee is charged on the part of the bill paid late (or still open);
an ``amount`` step is charged once per bill, whatever the sum.

Prompt-payment rebate: a bill paid in full within ``prompt_payment_within_days`` of its issue
date earns ``prompt_payment_rebate_percent`` of the components ``rebate_applies_to`` names
(their amount comes from the bill's lines, ``Bill.amount_of``).

Reminders: ``days_before_due`` days before the due date, on it, and on the first day of each
late-fee step; the daily job sends the latest one a bill should have had in the days it may
have missed (``latest_reminders``), each once (``reminder_id``).

Rounding: every fee and rebate is rounded half-up to ``quantum`` (default 0.01) once, on the
total for the bill, so a bill's fee does not depend on how many payments made it up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from meterhub.billing.core.tariff import LateFee, PaymentTerms, Tariff, TariffGap

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def late_fee_step(rules: Sequence[LateFee], days_late: int) -> LateFee | None:
    """The step in force for a sum ``days_late`` days after the due date (None: no fee)."""
    found: LateFee | None = None
    for rule in sorted(rules, key=lambda rule: rule.after_days):
        if days_late > rule.after_days:
            found = rule
    return found


def late_fee(
    terms: PaymentTerms | None,
    bill_total: Decimal,
    due_date: date,
    payments: Iterable[tuple[date, Decimal]],
    as_of: date,
    *,
    quantum: Decimal = CENT,
) -> Decimal:
    """The late fee a bill has earned by ``as_of``: each sum paid after the due date at the
    step for its own delay, what is still open at the step for ``as_of``."""
    if terms is None or not terms.late_fees or bill_total <= 0:
        return ZERO
    remaining = bill_total
    fee = Decimal(0)
    charged_once = False
    late: list[tuple[int, Decimal]] = []
    for paid_on, amount in sorted(payments):
        if paid_on > as_of or remaining <= 0:
            continue
        share = min(amount, remaining)
        remaining -= share
        if paid_on > due_date:
            late.append(((paid_on - due_date).days, share))
    if remaining > 0 and as_of > due_date:
        late.append(((as_of - due_date).days, remaining))
    for days, share in late:
        step = late_fee_step(terms.late_fees, days)
        if step is None:
            continue
        if step.percent is not None:
            fee += share * step.percent / 100
        if step.amount is not None and not charged_once:
            fee += step.amount
            charged_once = True
    return fee.quantize(quantum, rounding=ROUND_HALF_UP)


def prompt_payment_rebate(
    terms: PaymentTerms | None,
    rebate_base: Decimal,
    bill_total: Decimal,
    issued_on: date,
    payments: Iterable[tuple[date, Decimal]],
    *,
    quantum: Decimal = CENT,
) -> Decimal:
    """The rebate earned if the bill was paid in full within the window after ``issued_on``;
    ``rebate_base`` is the amount of the components the rebate applies to."""
    if (
        terms is None
        or terms.prompt_payment_rebate_percent is None
        or terms.prompt_payment_within_days is None
    ):
        return ZERO
    last_day = issued_on + timedelta(days=terms.prompt_payment_within_days)
    paid_in_time = sum((amount for paid_on, amount in payments if paid_on <= last_day), ZERO)
    # The rebate itself is a credit: paying the total less the rebate in time counts as paid.
    rebate = (rebate_base * terms.prompt_payment_rebate_percent / 100).quantize(
        quantum, rounding=ROUND_HALF_UP
    )
    if paid_in_time + rebate < bill_total:
        return ZERO
    return rebate


# ----------------------------------------------------------------------------- reminders


@dataclass(frozen=True, slots=True)
class OpenBill:
    consumer_id: str
    bill_ref: str
    due_date: date
    open_amount: Decimal
    terms: PaymentTerms | None


@dataclass(frozen=True, slots=True)
class Reminder:
    consumer_id: str
    bill_ref: str
    kind: Literal["before_due", "due", "late_fee"]
    days_from_due: int  # negative: before the due date
    open_amount: Decimal
    message: str


def reminders_on(
    day: date, open_bills: Iterable[OpenBill], *, days_before_due: Sequence[int] = (3,)
) -> list[Reminder]:
    """Who gets a reminder on ``day``: ``days_before_due`` days before the due date, on the
    due date itself, and on the first day each late-fee step of the bill's tariff applies
    (the consumer is told the fee that is now running). Paid bills get none."""
    out: list[Reminder] = []
    for bill in open_bills:
        if bill.open_amount <= 0:
            continue
        offset = (day - bill.due_date).days
        amount = bill.open_amount
        if -offset in days_before_due and offset < 0:
            out.append(
                Reminder(
                    bill.consumer_id, bill.bill_ref, "before_due", offset, amount,
                    f"{amount} due on {bill.due_date}",
                )
            )  # fmt: skip
        elif offset == 0:
            out.append(
                Reminder(bill.consumer_id, bill.bill_ref, "due", 0, amount, f"{amount} due today")
            )
        elif offset > 0 and bill.terms is not None:
            for step in bill.terms.late_fees:
                if offset == step.after_days + 1:
                    fee = f"{step.percent}%" if step.percent is not None else f"{step.amount}"
                    out.append(
                        Reminder(
                            bill.consumer_id, bill.bill_ref, "late_fee", offset, amount,
                            f"{amount} overdue since {bill.due_date}: a late fee of {fee} applies",
                        )
                    )  # fmt: skip
    return out


def terms_of(tariffs: Mapping[str, Tariff], tariff_id: str, version: date) -> PaymentTerms | None:
    """The payment terms of the tariff version a bill was priced on (None: none known)."""
    tariff = tariffs.get(tariff_id)
    if tariff is None:
        return None
    try:
        return tariff.version_on(version).payment_terms
    except TariffGap:
        return None


def latest_reminders(
    today: date,
    open_bills: Sequence[OpenBill],
    *,
    days_before_due: Sequence[int] = (3,),
    catch_up_days: int = 2,
) -> list[Reminder]:
    """The reminder each bill should have had most recently within the last ``catch_up_days``
    days (today included), at most one per bill."""
    latest: dict[str, Reminder] = {}
    for back in range(catch_up_days, -1, -1):  # oldest first: a later day replaces it
        day = today - timedelta(days=back)
        for reminder in reminders_on(day, open_bills, days_before_due=days_before_due):
            latest[reminder.bill_ref] = reminder
    return list(latest.values())


def reminder_id(reminder: Reminder) -> str:
    """Names the bill and the step, so each step of each bill is queued once."""
    return f"{reminder.bill_ref}:{reminder.kind}:{reminder.days_from_due}"


def fee_words(terms: PaymentTerms | None, reminder: Reminder, currency: str) -> str:
    """The late fee a ``late_fee`` reminder announces, in words ("" for other reminders)."""
    if terms is None or reminder.kind != "late_fee":
        return ""
    for step in terms.late_fees:
        if reminder.days_from_due == step.after_days + 1:
            if step.percent is not None:
                return f"{step.percent}% of the overdue amount"
            return f"{step.amount} {currency}"
    return ""
