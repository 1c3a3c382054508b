"""Payments service: record a payment once, allocate it, post it, issue its receipt.

Every function takes the caller's ``Connection`` and never commits: one payment is one unit
of work (the web hook or the command commits it). ``record_notice_once`` is the exception
that owns its transaction, because it must retry when two deliveries of the same notice race.

Idempotency: a gateway payment is keyed by the gateway's own payment id
(``payments.gateway_reference``, unique). A second delivery of the same notice finds the
first payment and returns it with ``duplicate=True``: no second payment, entry or receipt.
Counter payments may carry the slip or cheque number as their reference for the same effect.

What one payment is (one transaction): the ``payments`` row, its ``payment`` ledger entry,
its allocations, its receipt and the receipt's deliveries (``billing.delivery``); for a
consumer with a prepaid account also the top-up it buys and any reconnection request. Every
way money comes in (counter, gateway webhook, prepaid top-up) goes through ``_record``, so
each gets exactly one receipt message, and a repeat of a reference gets none.

Amounts: Decimal, exactly two places (the ledger's precision); an amount with finer digits is
refused rather than rounded, since someone paid exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError

from meterhub.billing import delivery, ledger, prepaid
from meterhub.billing.gateways.base import PaymentNotice
from meterhub.billing.late_fees import late_fee, late_fee_step, prompt_payment_rebate
from meterhub.billing.receipts import ReceiptFacts, receipt_text
from meterhub.billing.tariff import PaymentTerms
from meterhub.store import payments_store as store

CENT = Decimal("0.01")
CounterMethod = Literal["cash", "cheque"]


class PaymentRefused(ValueError):
    """The payment cannot be recorded (unknown consumer, bad amount)."""


@dataclass(frozen=True, slots=True)
class Recorded:
    payment_id: int
    duplicate: bool  # True: this reference was already recorded; nothing new was stored
    receipt_number: int
    receipt: str
    allocations: tuple[tuple[str, Decimal], ...]  # (bill id, amount)
    # A consumer with a prepaid account: the account's balance after this top-up, and the
    # reconnection it requested (None for a repeat, or when nothing was asked).
    prepaid_balance: Decimal | None = None
    supply_action: str | None = None


def record_notice(
    conn: Connection, notice: PaymentNotice, *, now: datetime | None = None
) -> Recorded:
    """Record a verified gateway notice, once per ``notice.reference``."""
    return _record(
        conn,
        consumer_id=notice.consumer_id,
        amount=notice.amount,
        currency=notice.currency,
        method="gateway",
        gateway=notice.gateway,
        reference=notice.reference,
        received_at=notice.paid_at,
        entered_by=None,
        notice=notice.raw,
        now=now,
    )


def record_notice_once(engine: Engine, notice: PaymentNotice) -> Recorded:
    """``record_notice`` in its own transaction; if a concurrent delivery of the same notice
    committed first (unique reference violated), the retry finds it and reports a duplicate."""
    try:
        with engine.begin() as conn:
            return record_notice(conn, notice)
    except IntegrityError:
        with engine.begin() as conn:
            return record_notice(conn, notice)


def record_counter_payment(
    conn: Connection,
    *,
    consumer_id: str,
    amount: Decimal,
    currency: str,
    method: CounterMethod,
    entered_by: str,
    received_at: datetime,
    reference: str | None = None,
    now: datetime | None = None,
) -> Recorded:
    """A cash or cheque payment taken at the counter by ``entered_by`` at ``received_at``."""
    if not entered_by.strip():
        raise PaymentRefused("a counter payment names the staff member who took it")
    return _record(
        conn,
        consumer_id=consumer_id,
        amount=amount,
        currency=currency,
        method=method,
        gateway=None,
        reference=f"counter:{reference}" if reference else None,
        received_at=received_at,
        entered_by=entered_by,
        notice=None,
        now=now,
    )


def record_topup(
    conn: Connection,
    *,
    consumer_id: str,
    amount: Decimal,
    method: CounterMethod,
    entered_by: str,
    received_at: datetime,
    reference: str | None = None,
    now: datetime | None = None,
) -> Recorded:
    """A prepaid top-up taken at the counter: a counter payment in the currency of the
    account's tariff (which credits the account, requests reconnection if due and queues the
    receipt). Raises ``prepaid.PrepaidError`` when the consumer has no prepaid account."""
    account = prepaid.get_account(conn, consumer_id)
    currency = store.tariff_currency(conn, account.tariff_id)
    if currency is None:
        raise PaymentRefused(f"no tariff {account.tariff_id} for the prepaid account")
    return record_counter_payment(
        conn,
        consumer_id=consumer_id,
        amount=amount,
        currency=currency,
        method=method,
        entered_by=entered_by,
        received_at=received_at,
        reference=reference,
        now=now,
    )


def statement(conn: Connection, consumer_id: str, as_of: date) -> ledger.Account:
    """The account on ``as_of``: balance, open bills, arrears and ageing, from the entries."""
    store.post_issued_bills(conn, consumer_id)
    return ledger.account(store.entries(conn, consumer_id), as_of)


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
    bill, entries = locked or _locked_bill(conn, consumer_id, bill_id)
    ref = str(bill_id)
    paid = [
        (a.at.date(), a.amount)
        for a in ledger.account(entries, as_of).allocations
        if a.debit_kind == "bill" and a.debit_ref == ref
    ]
    earned = late_fee(terms, Decimal(bill.total), bill.due_date, paid, as_of)
    posted = sum((e.amount for e in entries if e.kind == "late_fee" and e.ref == ref), Decimal(0))
    fee = earned - posted
    if fee <= 0:
        return Decimal("0.00")
    store.post(
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
    bill, entries = locked or _locked_bill(conn, consumer_id, bill_id)
    ref = str(bill_id)
    if any(e.kind == "rebate" and e.ref == ref for e in entries):
        return Decimal("0.00")
    paid = [
        (a.at.date(), a.amount)
        for a in ledger.account(entries, as_of).allocations
        if a.debit_kind == "bill" and a.debit_ref == ref and a.credit_kind == "payment"
    ]
    if not paid:  # nothing paid towards it: no rebate, whatever the base
        return Decimal("0.00")
    base = store.bill_amount_of(conn, bill_id, terms.rebate_applies_to if terms else [])
    issued_on = bill.issued_at.date()
    rebate = prompt_payment_rebate(terms, base, Decimal(bill.total), issued_on, paid)
    if rebate <= 0:
        return Decimal("0.00")
    store.post(
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


# ----------------------------------------------------------------------------- internals


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
    store.lock(conn, f"ledger:{consumer_id}")
    store.post_issued_bills(conn, consumer_id)
    bill = store.bill(conn, bill_id)
    if bill is None or bill.consumer_id != consumer_id:
        raise PaymentRefused(f"no bill {bill_id} for consumer {consumer_id}")
    return bill, store.entries(conn, consumer_id)


def _record(
    conn: Connection,
    *,
    consumer_id: str,
    amount: Decimal,
    currency: str,
    method: str,
    gateway: str | None,
    reference: str | None,
    received_at: datetime,
    entered_by: str | None,
    notice: dict[str, Any] | None,
    now: datetime | None,
) -> Recorded:
    now = now or datetime.now(UTC)
    if reference is not None:
        store.lock(conn, f"payment:{reference}")
        existing = store.payment_by_reference(conn, reference)
        if existing is not None:
            return _already(conn, existing.id)
    if amount <= 0 or amount != amount.quantize(CENT):
        raise PaymentRefused(f"amount {amount}: a positive sum in whole cents")
    who = store.consumer(conn, consumer_id)
    if who is None:
        raise PaymentRefused(f"unknown consumer {consumer_id}")
    store.lock(conn, f"ledger:{consumer_id}")
    store.post_issued_bills(conn, consumer_id)
    payment_id = store.insert_payment(
        conn,
        consumer_id=consumer_id,
        amount=amount,
        currency=currency,
        method=method,
        gateway=gateway,
        reference=reference,
        received_at=received_at,
        recorded_at=now,
        entered_by=entered_by,
        notice=notice,
    )
    ref = str(payment_id)
    description = f"payment {method}" + (f" {reference}" if reference else "")
    store.post(
        conn, consumer_id, ledger.Entry("payment", -amount, ref, received_at, None, description)
    )
    account = ledger.account(store.entries(conn, consumer_id), max(received_at.date(), now.date()))
    # What this payment paid, per bill (a bill's late fee counts towards its bill).
    paid: dict[str, Decimal] = {}
    for allocation in account.allocations:
        if _of_payment(allocation, ref) and allocation.debit_kind in ("bill", "late_fee"):
            paid[allocation.debit_ref] = (
                paid.get(allocation.debit_ref, Decimal(0)) + allocation.amount
            )
    allocations = tuple(sorted(paid.items(), key=lambda item: int(item[0])))
    store.insert_allocations(conn, payment_id, allocations)
    numbers = store.bill_numbers(conn, [bill_id for bill_id, _ in allocations])
    number = store.next_receipt_number(conn)
    placed = sum((a.amount for a in account.allocations if _of_payment(a, ref)), Decimal(0))
    facts = ReceiptFacts(
        number=number,
        issued_at=now,
        consumer_id=consumer_id,
        consumer_name=who.name,
        payment_id=payment_id,
        amount=amount,
        currency=currency,
        method=method,
        reference=reference,
        received_at=received_at,
        entered_by=entered_by,
        allocations=[(numbers.get(bill_id, bill_id), share) for bill_id, share in allocations],
        advance=amount - placed,
        balance_after=account.balance,
    )
    document = receipt_text(facts)
    receipt_id = store.insert_receipt(conn, payment_id, number, now, document)
    topped_up = None
    if prepaid.has_account(conn, consumer_id):
        # A prepaid consumer's payment is a top-up, whatever way it came (counter, gateway).
        topped_up = prepaid.credit_topup(
            conn, consumer_id, amount, reference or f"payment:{payment_id}", now,
            payment_id=payment_id,
        )  # fmt: skip
    # The receipt goes to the consumer through the delivery queue, in this transaction: once
    # per payment, never for a repeat (which returned above) nor for a rolled-back one.
    delivery.enqueue_receipt(
        conn,
        str(receipt_id),
        consumer_id,
        amount=amount,
        currency=currency,
        reference=reference or facts.receipt_number,
        paid_on=received_at.date().isoformat(),
        # Owed (> 0) or in credit (< 0); a prepaid account's exact balance is credit.
        balance=account.balance if topped_up is None else -topped_up[0].quantize(CENT),
        now=now,
    )
    return Recorded(
        payment_id,
        False,
        number,
        document,
        allocations,
        prepaid_balance=None if topped_up is None else topped_up[0],
        supply_action=None if topped_up is None else topped_up[1],
    )


def _already(conn: Connection, payment_id: int) -> Recorded:
    receipt = store.receipt_of(conn, payment_id)
    assert receipt is not None  # stored in the same transaction as the payment
    return Recorded(
        payment_id,
        True,
        receipt.number,
        receipt.document,
        tuple(store.allocations_of(conn, payment_id)),
    )


def _of_payment(allocation: ledger.Allocation, payment_ref: str) -> bool:
    return allocation.credit_kind == "payment" and allocation.credit_ref == payment_ref
