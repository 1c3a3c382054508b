"""Payments service: record a payment once, allocate it, post it, issue its receipt.

Every function takes the caller's ``Connection`` and never commits: one payment is one unit
of work (the web hook or the command commits it). ``record_notice_once`` is the exception
that owns its transaction, because it must retry when two deliveries of the same notice race.

Idempotency: a gateway payment is keyed by the gateway's own payment id
(``payments.gateway_reference``, unique). A second delivery of the same notice finds the
first payment and returns it with ``duplicate=True``: no second payment, entry or receipt.
Counter payments may carry the slip or cheque number as their reference for the same effect.

What one payment is (one transaction): the ``payments`` row, its ``payment`` ledger entry,
its allocations, its receipt and the receipt's deliveries (``billing.jobs.delivery``); for a
consumer with a prepaid account also the top-up it buys and any reconnection request. Every
way money comes in (counter, gateway webhook, prepaid top-up) goes through ``_record``, so
each gets exactly one receipt message, and a repeat of a reference gets none.

Amounts: Decimal, exactly two places (the ledger's precision); an amount with finer digits is
refused rather than rounded, since someone paid exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from meterhub.billing.core import ledger
from meterhub.billing.core.ledger import Account, Allocation, Entry
from meterhub.billing.core.prepaid import SupplyAction
from meterhub.billing.core.receipts import ReceiptFacts, receipt_text
from meterhub.billing.gateways.base import PaymentNotice
from meterhub.billing.jobs import delivery, prepaid
from meterhub.billing.payments.ledger import entries, lock_ledger, post, post_issued_bills
from meterhub.store import billable
from meterhub.store import bills as bill_store
from meterhub.store import payments as payment_store
from meterhub.store import tariffs as tariff_store
from meterhub.store.dialects import transaction_lock

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
        _Payment(
            consumer_id=notice.consumer_id,
            amount=notice.amount,
            currency=notice.currency,
            method="gateway",
            gateway=notice.gateway,
            reference=notice.reference,
            received_at=notice.paid_at,
            entered_by=None,
            notice=notice.raw,
        ),
        now or datetime.now(UTC),
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
        _Payment(
            consumer_id=consumer_id,
            amount=amount,
            currency=currency,
            method=method,
            gateway=None,
            reference=f"counter:{reference}" if reference else None,
            received_at=received_at,
            entered_by=entered_by,
            notice=None,
        ),
        now or datetime.now(UTC),
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
    currency = tariff_store.tariff_currency(conn, account.tariff_id)
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


# ----------------------------------------------------------------------------- the steps


@dataclass(frozen=True, slots=True)
class _Payment:
    """What came in, as the counter or the gateway reported it."""

    consumer_id: str
    amount: Decimal
    currency: str
    method: str  # cash | cheque | gateway
    gateway: str | None
    reference: str | None
    received_at: datetime
    entered_by: str | None
    notice: dict[str, Any] | None


def _record(conn: Connection, payment: _Payment, now: datetime) -> Recorded:
    """One payment, one unit of work, in this order (each step below says what it adds)."""
    if payment.reference is not None:
        earlier = _recorded_before(conn, payment.reference)
        if earlier is not None:
            return earlier
    payer = _payer(conn, payment)
    lock_ledger(conn, payment.consumer_id)
    post_issued_bills(conn, payment.consumer_id)
    payment_id = _store_payment(conn, payment, now)
    account, allocations = _allocate(conn, payment, payment_id, now)
    facts = _receipt_facts(conn, payment, payment_id, payer, account, allocations, now)
    document = receipt_text(facts)
    receipt_id = payment_store.insert_receipt(conn, payment_id, facts.number, now, document)
    topped_up = _top_up(conn, payment, payment_id, now)
    # The receipt goes to the consumer through the delivery queue, in this transaction: once
    # per payment, never for a repeat (which returned above) nor for a rolled-back one.
    delivery.enqueue_receipt(
        conn,
        str(receipt_id),
        payment.consumer_id,
        amount=payment.amount,
        currency=payment.currency,
        reference=payment.reference or facts.receipt_number,
        paid_on=payment.received_at.date().isoformat(),
        # Owed (> 0) or in credit (< 0); a prepaid account's exact balance is credit.
        balance=account.balance if topped_up is None else -topped_up[0].quantize(CENT),
        now=now,
    )
    return Recorded(
        payment_id,
        False,
        facts.number,
        document,
        allocations,
        prepaid_balance=None if topped_up is None else topped_up[0],
        supply_action=None if topped_up is None else topped_up[1],
    )


def _recorded_before(conn: Connection, reference: str) -> Recorded | None:
    """The payment already recorded with this reference, as a duplicate; the lock makes a
    concurrent delivery of the same reference wait for this transaction."""
    transaction_lock(conn, f"payment:{reference}")
    payment_id = payment_store.payment_by_reference(conn, reference)
    if payment_id is None:
        return None
    receipt = payment_store.receipt_of(conn, payment_id)
    assert receipt is not None  # stored in the same transaction as the payment
    allocations = payment_store.allocations_of(conn, payment_id)
    return Recorded(
        payment_id,
        True,
        receipt.number,
        receipt.document,
        tuple((str(bill_id), amount) for bill_id, amount in allocations),
    )


def _payer(conn: Connection, payment: _Payment) -> str:
    """The payer's name; a payment of no whole-cent positive amount, or from no known
    consumer, is refused."""
    amount = payment.amount
    if amount <= 0 or amount != amount.quantize(CENT):
        raise PaymentRefused(f"amount {amount}: a positive sum in whole cents")
    name = billable.consumer_name(conn, payment.consumer_id)
    if name is None:
        raise PaymentRefused(f"unknown consumer {payment.consumer_id}")
    return name


def _store_payment(conn: Connection, payment: _Payment, now: datetime) -> int:
    """The ``payments`` row and its ledger credit; the payment's id."""
    payment_id = payment_store.insert_payment(
        conn,
        consumer_id=payment.consumer_id,
        amount=payment.amount,
        currency=payment.currency,
        method=payment.method,
        gateway=payment.gateway,
        reference=payment.reference,
        received_at=payment.received_at,
        recorded_at=now,
        entered_by=payment.entered_by,
        notice=payment.notice,
    )
    description = f"payment {payment.method}" + (
        f" {payment.reference}" if payment.reference else ""
    )
    post(
        conn,
        payment.consumer_id,
        Entry("payment", -payment.amount, str(payment_id), payment.received_at, None, description),
    )
    return payment_id


def _allocate(
    conn: Connection, payment: _Payment, payment_id: int, now: datetime
) -> tuple[Account, tuple[tuple[str, Decimal], ...]]:
    """The account with the payment on it, and what the payment paid per bill (stored): a
    bill's late fee counts towards its bill."""
    as_of = max(payment.received_at.date(), now.date())
    statement = ledger.account(entries(conn, payment.consumer_id), as_of)
    ref = str(payment_id)
    paid: dict[str, Decimal] = {}
    for allocation in statement.allocations:
        if _of_payment(allocation, ref) and allocation.debit_kind in ("bill", "late_fee"):
            paid[allocation.debit_ref] = (
                paid.get(allocation.debit_ref, Decimal(0)) + allocation.amount
            )
    allocations = tuple(sorted(paid.items(), key=lambda item: int(item[0])))
    payment_store.insert_allocations(
        conn, payment_id, [(int(bill_id), amount) for bill_id, amount in allocations]
    )
    return statement, allocations


def _receipt_facts(
    conn: Connection,
    payment: _Payment,
    payment_id: int,
    payer: str,
    account: Account,
    allocations: tuple[tuple[str, Decimal], ...],
    now: datetime,
) -> ReceiptFacts:
    """What the receipt says, under the next receipt number."""
    numbers = bill_store.numbers_of(conn, [int(bill_id) for bill_id, _ in allocations])
    number = payment_store.next_receipt_number(conn)
    ref = str(payment_id)
    placed = sum((a.amount for a in account.allocations if _of_payment(a, ref)), Decimal(0))
    return ReceiptFacts(
        number=number,
        issued_at=now,
        consumer_id=payment.consumer_id,
        consumer_name=payer,
        payment_id=payment_id,
        amount=payment.amount,
        currency=payment.currency,
        method=payment.method,
        reference=payment.reference,
        received_at=payment.received_at,
        entered_by=payment.entered_by,
        allocations=[(numbers.get(int(bill_id), bill_id), share) for bill_id, share in allocations],
        advance=payment.amount - placed,
        balance_after=account.balance,
    )


def _top_up(
    conn: Connection, payment: _Payment, payment_id: int, now: datetime
) -> tuple[Decimal, SupplyAction | None] | None:
    """A prepaid consumer's payment is a top-up, whatever way it came (counter, gateway): the
    account's balance after it and the reconnection it asked for; None without an account."""
    if not prepaid.has_account(conn, payment.consumer_id):
        return None
    return prepaid.credit_topup(
        conn,
        payment.consumer_id,
        payment.amount,
        payment.reference or f"payment:{payment_id}",
        now,
        payment_id=payment_id,
    )


def _of_payment(allocation: Allocation, payment_ref: str) -> bool:
    return allocation.credit_kind == "payment" and allocation.credit_ref == payment_ref
