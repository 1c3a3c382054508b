"""SQL for payments: payments, what they paid (allocations) and their receipts. No commits
here: the caller's transaction is the unit of work."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Connection, func, insert, select

from meterhub.store.dialects import transaction_lock
from meterhub.store.schema_payments import payment_allocations, payments, receipts


def payment_by_reference(conn: Connection, reference: str) -> int | None:
    """The id of the payment recorded with ``reference``, if there is one."""
    query = select(payments.c.id).where(payments.c.gateway_reference == reference)
    found = conn.execute(query).scalar()
    return None if found is None else int(found)


def insert_payment(
    conn: Connection,
    *,
    consumer_id: str,
    amount: Decimal,
    currency: str,
    method: str,
    gateway: str | None,
    reference: str | None,
    received_at: datetime,
    recorded_at: datetime,
    entered_by: str | None,
    notice: dict[str, Any] | None,
) -> int:
    result = conn.execute(
        insert(payments).values(
            consumer_id=consumer_id,
            amount=amount,
            currency=currency,
            method=method,
            gateway=gateway,
            gateway_reference=reference,
            received_at=received_at,
            recorded_at=recorded_at,
            entered_by=entered_by,
            notice=notice,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def insert_allocations(
    conn: Connection, payment_id: int, allocations: Sequence[tuple[int, Decimal]]
) -> None:
    """What the payment paid: (bill id, amount) each."""
    rows = [
        {"payment_id": payment_id, "bill_id": bill_id, "amount": amount}
        for bill_id, amount in allocations
    ]
    if rows:
        conn.execute(insert(payment_allocations), rows)


def allocations_of(conn: Connection, payment_id: int) -> list[tuple[int, Decimal]]:
    rows = conn.execute(
        select(payment_allocations.c.bill_id, payment_allocations.c.amount)
        .where(payment_allocations.c.payment_id == payment_id)
        .order_by(payment_allocations.c.bill_id)
    )
    return [(int(row.bill_id), Decimal(row.amount)) for row in rows]


# ----------------------------------------------------------------------------- receipts


def next_receipt_number(conn: Connection) -> int:
    """One more than the last: gap-free because it is taken under a lock in the transaction
    that stores the receipt (a rolled-back payment takes no number)."""
    transaction_lock(conn, "receipt-numbers")
    last = conn.execute(select(func.max(receipts.c.number))).scalar_one()
    return int(last or 0) + 1


def insert_receipt(
    conn: Connection, payment_id: int, number: int, issued_at: datetime, document: str
) -> int:
    result = conn.execute(
        insert(receipts).values(
            payment_id=payment_id, number=number, issued_at=issued_at, document=document
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


class ReceiptRow(NamedTuple):
    id: int
    number: int
    document: str


def receipt_of(conn: Connection, payment_id: int) -> ReceiptRow | None:
    query = select(receipts.c.id, receipts.c.number, receipts.c.document).where(
        receipts.c.payment_id == payment_id
    )
    row = conn.execute(query).first()
    return None if row is None else ReceiptRow(int(row[0]), int(row[1]), row[2])
