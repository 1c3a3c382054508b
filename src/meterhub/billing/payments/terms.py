"""Payment terms on the ledger: the late fee a bill has earned and the prompt-payment rebate,
each posted once (the rules themselves are pure: ``billing.core.late_fees``).

Functions take the caller's ``Connection`` and never commit; the daily job
(``billing.jobs.dunning``) calls them for all of a consumer's bills under one ledger lock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row

from meterhub.billing.core import ledger
from meterhub.billing.core.late_fees import late_fee, late_fee_step, prompt_payment_rebate
from meterhub.billing.core.tariff import PaymentTerms
from meterhub.billing.payments.ledger import entries, lock_ledger, post, post_issued_bills
from meterhub.billing.payments.record import PaymentRefused
from meterhub.store import bills as bill_store


def assess_late_fee(
    conn: Connection,
    consumer_id: str,
    bill_id: int,
    terms: PaymentTerms | None,
    as_of: date,
    *,
    locked: tuple[Row[Any], list[ledger.Entry]] | None = None,
) -> Decimal:
    """Post the late fee the bill has earned by ``as_of`` less what is already posted for it
    (so running this every day posts each step once). Returns the amount posted; the entry is
    dated the start of ``as_of`` (UTC), the day the fee is assessed for.

    ``locked``: the bill and the consumer's entries, from a caller that holds the ledger lock
    and has posted the issued bills (the daily job, for all of a consumer's bills at once)."""
    bill, posted_entries = locked or _locked_bill(conn, consumer_id, bill_id)
    ref = str(bill_id)
    paid = [
        (a.at.date(), a.amount)
        for a in ledger.account(posted_entries, as_of).allocations
        if a.debit_kind == "bill" and a.debit_ref == ref
    ]
    earned = late_fee(terms, Decimal(bill.total), bill.due_date, paid, as_of)
    posted = sum(
        (e.amount for e in posted_entries if e.kind == "late_fee" and e.ref == ref), Decimal(0)
    )
    fee = earned - posted
    if fee <= 0:
        return Decimal("0.00")
    post(
        conn,
        consumer_id,
        ledger.Entry(
            "late_fee",
            fee,
            ref,
            datetime.combine(as_of, time.min, UTC),
            as_of,
            _late_fee_reason(terms, bill.number, bill.due_date, as_of),
        ),
    )
    return fee


def grant_prompt_payment_rebate(
    conn: Connection,
    consumer_id: str,
    bill_id: int,
    terms: PaymentTerms | None,
    as_of: date,
    *,
    locked: tuple[Row[Any], list[ledger.Entry]] | None = None,
) -> Decimal:
    """Credit the prompt-payment rebate if the bill was paid in full within the window after
    its issue date (the rebate itself counts towards paying it). Posted once per bill; returns
    the amount credited now (0.00 if not earned or already credited). ``locked``: as for
    ``assess_late_fee``."""
    bill, posted_entries = locked or _locked_bill(conn, consumer_id, bill_id)
    ref = str(bill_id)
    if any(e.kind == "rebate" and e.ref == ref for e in posted_entries):
        return Decimal("0.00")
    paid = [
        (a.at.date(), a.amount)
        for a in ledger.account(posted_entries, as_of).allocations
        if a.debit_kind == "bill" and a.debit_ref == ref and a.credit_kind == "payment"
    ]
    if not paid:  # nothing paid towards it: no rebate, whatever the base
        return Decimal("0.00")
    base = _amount_of(conn, bill_id, terms.rebate_applies_to if terms else [])
    issued_on = bill.issued_at.date()
    rebate = prompt_payment_rebate(terms, base, Decimal(bill.total), issued_on, paid)
    if rebate <= 0:
        return Decimal("0.00")
    post(
        conn,
        consumer_id,
        ledger.Entry(
            "rebate",
            -rebate,
            ref,
            datetime.combine(as_of, time.min, UTC),
            None,
            f"prompt-payment rebate on bill {bill.number}",
        ),
    )
    return rebate


def _amount_of(conn: Connection, bill_id: int, names: list[str]) -> Decimal:
    """The sum of a bill's lines whose code or kind is one of ``names`` (as ``Bill.amount_of``)."""
    wanted = set(names)
    return sum(
        (
            amount
            for code, kind, amount in bill_store.line_amounts(conn, bill_id)
            if code in wanted or kind in wanted
        ),
        Decimal("0.00"),
    )


def _late_fee_reason(terms: PaymentTerms | None, number: str, due: date, as_of: date) -> str:
    """Why the fee is posted: the bill, its due date and the step of the tariff now running."""
    days = (as_of - due).days
    step = late_fee_step(terms.late_fees, days) if terms else None
    rule = ""
    if step is not None:
        rate = f"{step.percent}%" if step.percent is not None else f"{step.amount}"
        rule = f": {rate} after {step.after_days} days"
    return f"late payment fee on bill {number}, due {due}, {days} days overdue on {as_of}{rule}"


def _locked_bill(
    conn: Connection, consumer_id: str, bill_id: int
) -> tuple[Row[Any], list[ledger.Entry]]:
    """Lock the consumer's ledger, post any newly issued bills, and return the bill with the
    consumer's entries; a bill of another consumer is refused."""
    lock_ledger(conn, consumer_id)
    post_issued_bills(conn, consumer_id)
    bill = bill_store.bill(conn, bill_id)
    if bill is None or bill.consumer_id != consumer_id:
        raise PaymentRefused(f"no bill {bill_id} for consumer {consumer_id}")
    return bill, entries(conn, consumer_id)
