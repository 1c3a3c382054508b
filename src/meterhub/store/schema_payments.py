"""Payments tables: the consumer ledger, payments, their allocation to bills, receipts.

Balances, arrears and ageing are not stored: ``billing.ledger`` derives them from
``ledger_entries``. ``payment_allocations`` records which bills a payment paid when it was
received (what its receipt shows). Money is ``Numeric(14, 2)``: exact on PostgreSQL; SQLite
keeps it as a number that SQLAlchemy hands back as a ``Decimal`` at two places.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
)

from meterhub.store.schema import UTC_TS, metadata

MONEY = Numeric(14, 2)
_ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER keys only

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("consumer_id", String(64), ForeignKey("consumers.id"), nullable=False),
    # bill | payment | adjustment | credit_note | late_fee | rebate | prepaid (usage drawn
    # down from a prepaid account, mirrored at the cent: docs/delivery-and-prepaid.md)
    Column("kind", String(16), nullable=False),
    # Signed: debits (what the consumer owes) positive, credits negative.
    Column("amount", MONEY, nullable=False),
    # What the entry comes from: the bill id (bill, late_fee, rebate), the payment id, ...
    Column("ref", String(64), nullable=False),
    Column("at", UTC_TS, nullable=False),
    # Debits: the day payment falls due (a bill's due date); ageing counts from it.
    Column("due_on", Date),
    Column("description", Text, nullable=False, server_default=""),
    CheckConstraint(
        "kind IN ('bill', 'payment', 'adjustment', 'credit_note', 'late_fee', 'rebate', 'prepaid')",
        name="kind",
    ),
    Index("ix_ledger_entries_consumer_at", "consumer_id", "at"),
    Index("ix_ledger_entries_ref", "ref"),
)

payments = Table(
    "payments",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("consumer_id", String(64), ForeignKey("consumers.id"), nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("currency", String(3), nullable=False),
    # cash | cheque | gateway
    Column("method", String(16), nullable=False),
    Column("gateway", String(32)),
    # The gateway's payment id (or a counter slip / cheque reference): recorded once.
    Column("gateway_reference", String(128), unique=True),
    # completed | reversed
    Column("status", String(16), nullable=False, server_default="completed"),
    Column("received_at", UTC_TS, nullable=False),
    Column("recorded_at", UTC_TS, nullable=False),
    # Counter payments: the staff member who took it.
    Column("entered_by", String(128)),
    # The gateway's notice as it arrived (after its signature was verified).
    Column("notice", JSON),
    CheckConstraint("method IN ('cash', 'cheque', 'gateway')", name="method"),
    CheckConstraint("amount > 0", name="amount_positive"),
    Index("ix_payments_consumer_received", "consumer_id", "received_at"),
)

payment_allocations = Table(
    "payment_allocations",
    metadata,
    Column("payment_id", _ID, ForeignKey("payments.id"), primary_key=True),
    Column("bill_id", BigInteger, ForeignKey("bills.id"), primary_key=True),
    Column("amount", MONEY, nullable=False),
)

receipts = Table(
    "receipts",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("payment_id", _ID, ForeignKey("payments.id"), nullable=False, unique=True),
    # Sequential without gaps across the utility: numbers are taken under a lock.
    Column("number", BigInteger, nullable=False, unique=True),
    Column("issued_at", UTC_TS, nullable=False),
    Column("document", Text, nullable=False),
)
