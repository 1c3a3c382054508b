"""SQL for payments: ledger entries, payments, allocations, receipts. No commits here: the
caller's transaction is the unit of work."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, and_, func, insert, select, text

from meterhub.billing.ledger import Entry
from meterhub.store.schema import consumers
from meterhub.store.schema_billing import bill_adjustments, bill_lines, bills, tariffs
from meterhub.store.schema_payments import (
    ledger_entries,
    payment_allocations,
    payments,
    receipts,
)


def lock(conn: Connection, key: str) -> None:
    """Serialise writers on ``key`` for the rest of the transaction. PostgreSQL: an advisory
    transaction lock; SQLite has one writer at a time anyway."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": zlib.crc32(key.encode())})


# ----------------------------------------------------------------------------- ledger


def entries(conn: Connection, consumer_id: str) -> list[Entry]:
    rows = conn.execute(
        select(ledger_entries)
        .where(ledger_entries.c.consumer_id == consumer_id)
        .order_by(ledger_entries.c.at, ledger_entries.c.id)
    ).all()
    return [
        Entry(row.kind, Decimal(row.amount), row.ref, row.at, row.due_on, row.description)
        for row in rows
    ]


def post(conn: Connection, consumer_id: str, entry: Entry) -> int:
    result = conn.execute(
        insert(ledger_entries).values(
            consumer_id=consumer_id,
            kind=entry.kind,
            amount=entry.amount,
            ref=entry.ref,
            at=entry.at,
            due_on=entry.due_on,
            description=entry.description,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def post_issued_bills(conn: Connection, consumer_id: str) -> int:
    """Debit the account with every issued bill (and credit or debit every adjustment or credit
    note on them) not yet on it. Idempotent: the entry's ``ref`` says what is posted."""
    posted = {
        (row.kind, row.ref)
        for row in conn.execute(
            select(ledger_entries.c.kind, ledger_entries.c.ref).where(
                ledger_entries.c.consumer_id == consumer_id
            )
        )
    }
    count = 0
    for bill in conn.execute(
        select(bills).where(and_(bills.c.consumer_id == consumer_id, bills.c.status == "issued"))
    ):
        if ("bill", str(bill.id)) not in posted:
            post(
                conn,
                consumer_id,
                Entry(
                    "bill", Decimal(bill.total), str(bill.id), bill.issued_at, bill.due_date,
                    f"bill {bill.number}",
                ),
            )  # fmt: skip
            count += 1
    for adjustment in conn.execute(
        select(bill_adjustments, bills.c.number)
        .join(bills, bills.c.id == bill_adjustments.c.bill_id)
        .where(bills.c.consumer_id == consumer_id)
    ):
        ref = f"adj-{adjustment.id}"
        if (adjustment.kind, ref) not in posted:
            post(
                conn,
                consumer_id,
                Entry(
                    adjustment.kind, Decimal(adjustment.amount), ref, adjustment.created_at,
                    None, f"{adjustment.kind.replace('_', ' ')} on bill {adjustment.number}: "
                    f"{adjustment.reason}",
                ),
            )  # fmt: skip
            count += 1
    return count


def bill_numbers(conn: Connection, bill_ids: Sequence[str]) -> dict[str, str]:
    ids = [int(bill_id) for bill_id in bill_ids if bill_id.isdigit()]
    if not ids:
        return {}
    rows = conn.execute(select(bills.c.id, bills.c.number).where(bills.c.id.in_(ids)))
    return {str(row.id): row.number for row in rows}


def bill(conn: Connection, bill_id: int) -> Row[Any] | None:
    return conn.execute(select(bills).where(bills.c.id == bill_id)).first()


def bill_amount_of(conn: Connection, bill_id: int, names: Sequence[str]) -> Decimal:
    """The sum of a bill's lines whose code or kind is one of ``names`` (as ``Bill.amount_of``)."""
    wanted = set(names)
    rows = conn.execute(
        select(bill_lines.c.code, bill_lines.c.kind, bill_lines.c.amount).where(
            bill_lines.c.bill_id == bill_id
        )
    )
    return sum(
        (Decimal(r.amount) for r in rows if r.code in wanted or r.kind in wanted), Decimal("0.00")
    )


def tariff_currency(conn: Connection, tariff_id: str) -> str | None:
    query = select(tariffs.c.currency).where(tariffs.c.id == tariff_id)
    currency = conn.execute(query).scalar()
    return None if currency is None else str(currency)


def consumer(conn: Connection, consumer_id: str) -> Row[Any] | None:
    return conn.execute(select(consumers).where(consumers.c.id == consumer_id)).first()


# ----------------------------------------------------------------------------- payments


def payment_by_reference(conn: Connection, reference: str) -> Row[Any] | None:
    return conn.execute(select(payments).where(payments.c.gateway_reference == reference)).first()


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
    conn: Connection, payment_id: int, allocations: Sequence[tuple[str, Decimal]]
) -> None:
    rows = [
        {"payment_id": payment_id, "bill_id": int(bill_id), "amount": amount}
        for bill_id, amount in allocations
    ]
    if rows:
        conn.execute(insert(payment_allocations), rows)


def allocations_of(conn: Connection, payment_id: int) -> list[tuple[str, Decimal]]:
    rows = conn.execute(
        select(payment_allocations.c.bill_id, payment_allocations.c.amount)
        .where(payment_allocations.c.payment_id == payment_id)
        .order_by(payment_allocations.c.bill_id)
    )
    return [(str(row.bill_id), Decimal(row.amount)) for row in rows]


# ----------------------------------------------------------------------------- receipts


def next_receipt_number(conn: Connection) -> int:
    """One more than the last: gap-free because it is taken under a lock in the transaction
    that stores the receipt (a rolled-back payment takes no number)."""
    lock(conn, "receipt-numbers")
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


def receipt_of(conn: Connection, payment_id: int) -> Row[Any] | None:
    return conn.execute(select(receipts).where(receipts.c.payment_id == payment_id)).first()
