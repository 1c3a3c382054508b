"""SQL for the consumer ledger: entries in, entries out. No commits here: the caller's
transaction is the unit of work, under the ledger's lock (``dialects.transaction_lock``)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import Connection, func, insert, select

from meterhub.store.schema_payments import ledger_entries


class EntryRow(NamedTuple):
    kind: str
    amount: Decimal
    ref: str
    at: datetime
    due_on: date | None
    description: str


def entries(conn: Connection, consumer_id: str) -> list[EntryRow]:
    """The consumer's entries, in posting order."""
    t = ledger_entries
    rows = conn.execute(
        select(t.c.kind, t.c.amount, t.c.ref, t.c.at, t.c.due_on, t.c.description)
        .where(t.c.consumer_id == consumer_id)
        .order_by(t.c.at, t.c.id)
    ).all()
    return [EntryRow(r[0], Decimal(r[1]), r[2], r[3], r[4], r[5]) for r in rows]


def posted_refs(conn: Connection, consumer_id: str) -> set[tuple[str, str]]:
    """(kind, ref) of every entry on the consumer's account."""
    query = select(ledger_entries.c.kind, ledger_entries.c.ref).where(
        ledger_entries.c.consumer_id == consumer_id
    )
    return {(row.kind, row.ref) for row in conn.execute(query)}


def total_of_kind(conn: Connection, consumer_id: str, kind: str) -> Decimal:
    """The sum of the consumer's entries of one kind (0 without any)."""
    total = conn.execute(
        select(func.coalesce(func.sum(ledger_entries.c.amount), 0)).where(
            ledger_entries.c.consumer_id == consumer_id, ledger_entries.c.kind == kind
        )
    ).scalar_one()
    return Decimal(str(total))


def post(
    conn: Connection,
    consumer_id: str,
    *,
    kind: str,
    amount: Decimal,
    ref: str,
    at: datetime,
    due_on: date | None,
    description: str,
) -> int:
    result = conn.execute(
        insert(ledger_entries).values(
            consumer_id=consumer_id,
            kind=kind,
            amount=amount,
            ref=ref,
            at=at,
            due_on=due_on,
            description=description,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])
