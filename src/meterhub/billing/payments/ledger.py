"""The consumer ledger in the store: entries read and posted as ``ledger.Entry``, issued bills
and their corrections posted once, the statement of account.

Writers of one consumer's ledger take turns under ``lock_ledger`` for the rest of their
transaction. Functions take the caller's ``Connection`` and never commit.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import cast

from sqlalchemy import Connection

from meterhub.billing.core.ledger import Account, Entry, EntryKind, account
from meterhub.store import bills as bill_store
from meterhub.store import ledger as ledger_store
from meterhub.store.dialects import transaction_lock


def lock_ledger(conn: Connection, consumer_id: str) -> None:
    """Payments, late fees, rebates and prepaid accruals of one consumer take turns: each sees
    the entries the other posted."""
    transaction_lock(conn, f"ledger:{consumer_id}")


def entries(conn: Connection, consumer_id: str) -> list[Entry]:
    return [
        Entry(cast(EntryKind, row.kind), row.amount, row.ref, row.at, row.due_on, row.description)
        for row in ledger_store.entries(conn, consumer_id)
    ]


def post(conn: Connection, consumer_id: str, entry: Entry) -> int:
    return ledger_store.post(
        conn,
        consumer_id,
        kind=entry.kind,
        amount=entry.amount,
        ref=entry.ref,
        at=entry.at,
        due_on=entry.due_on,
        description=entry.description,
    )


def post_issued_bills(conn: Connection, consumer_id: str) -> int:
    """Debit the account with every issued bill (and credit or debit every adjustment or credit
    note on them) not yet on it. Idempotent: the entry's ``ref`` says what is posted."""
    posted = ledger_store.posted_refs(conn, consumer_id)
    count = 0
    for bill in bill_store.issued_bills_of(conn, consumer_id):
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
    for adjustment in bill_store.adjustments_of_consumer(conn, consumer_id):
        ref = f"adj-{adjustment.id}"
        if (adjustment.kind, ref) not in posted:
            post(
                conn,
                consumer_id,
                Entry(
                    cast(EntryKind, adjustment.kind), adjustment.amount, ref,
                    adjustment.created_at, None,
                    f"{adjustment.kind.replace('_', ' ')} on bill {adjustment.bill_number}: "
                    f"{adjustment.reason}",
                ),
            )  # fmt: skip
            count += 1
    return count


def statement(conn: Connection, consumer_id: str, as_of: date) -> Account:
    """The account on ``as_of``: balance, open bills, arrears and ageing, from the entries."""
    post_issued_bills(conn, consumer_id)
    return account(entries(conn, consumer_id), as_of)
