"""Billing's records in the store, as billing's own types: tariffs validated from their stored
documents, issued bills with their balance, corrections checked before they are stored.

The store hands back plain rows; this is where they become ``Tariff`` and ``StoredBill``.
Functions take the caller's ``Connection`` and never commit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Connection

from meterhub.billing.core.stored_bill import StoredBill
from meterhub.billing.core.tariff import Tariff, parse_tariff
from meterhub.store import bills as bill_store
from meterhub.store import tariffs as tariff_store

ADJUSTMENT_KINDS = ("adjustment", "credit_note")


def save_tariff(
    conn: Connection, tariff: Tariff, *, source_file: str | None = None, now: datetime | None = None
) -> None:
    """Store (or replace) a validated tariff document under its id."""
    tariff_store.save_tariff(
        conn,
        tariff.id,
        name=tariff.name,
        category=tariff.category,
        currency=tariff.currency,
        document=tariff.model_dump(mode="json", by_alias=True, exclude_none=True),
        source_file=source_file,
        loaded_at=now or datetime.now(UTC),
    )


def load_tariffs(conn: Connection) -> dict[str, Tariff]:
    """Every stored tariff, validated again (a stored document is still only data)."""
    return {
        tariff_id: parse_tariff(document)
        for tariff_id, document in tariff_store.tariff_documents(conn).items()
    }


def stored_tariff(conn: Connection, tariff_id: str) -> Tariff | None:
    """The stored tariff ``tariff_id``, validated (None: no such tariff stored)."""
    document = tariff_store.tariff_document(conn, tariff_id)
    return None if document is None else parse_tariff(document)


def load_bill(conn: Connection, number: str) -> StoredBill | None:
    rows = bill_store.load_bill(conn, number)
    return None if rows is None else StoredBill(*rows)


def add_adjustment(
    conn: Connection,
    number: str,
    kind: str,
    amount: Decimal,
    reason: str,
    *,
    created_by: str | None = None,
    now: datetime | None = None,
) -> int:
    """Correct an issued bill without touching it: an adjustment or a credit note, with a reason.

    A credit note is in the consumer's favour, so its amount must be negative."""
    if kind not in ADJUSTMENT_KINDS:
        raise ValueError(f"kind must be one of {ADJUSTMENT_KINDS}, not {kind!r}")
    if not reason.strip():
        raise ValueError("a correction needs a reason")
    if amount != amount.quantize(Decimal("0.01")) or amount == 0:
        raise ValueError(f"amount {amount} must be non-zero with at most two decimals")
    if kind == "credit_note" and amount > 0:
        raise ValueError("a credit note reduces what is owed: its amount is negative")
    bill_id = bill_store.id_of(conn, number)
    if bill_id is None:
        raise LookupError(f"no bill {number}")
    return bill_store.insert_adjustment(
        conn,
        bill_id,
        kind,
        amount,
        reason,
        created_by=created_by,
        created_at=now or datetime.now(UTC),
    )
