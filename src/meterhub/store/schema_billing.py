"""Billing tables: tariffs and who is on them, bill runs, issued bills and their corrections.

Money is ``Numeric(14, 2)`` (exact on PostgreSQL; SQLAlchemy hands back ``Decimal`` on both
databases); quantities and rates carry six decimals. An issued bill is never updated: a
correction is a row of ``bill_adjustments`` (an adjustment or a credit note, with its reason).
``bill_numbers`` is the per-utility, per-year counter that the bill insert advances in the same
transaction, so numbers are sequential and gap-free.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from meterhub.store.schema import UTC_TS, metadata

MONEY = Numeric(14, 2)
QUANTITY = Numeric(20, 6)

# One row per tariff document (its ``id``); loading a newer document with more versions
# replaces it, and bills keep the id and the effective date of the version they used.
tariffs = Table(
    "tariffs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("category", String(64)),
    Column("currency", String(3), nullable=False),
    Column("document", JSON, nullable=False),
    Column("source_file", Text),
    Column("loaded_at", UTC_TS, nullable=False),
    Index("ix_tariffs_category", "category"),
)

# The tariff a consumer is on from a local date; without a row, the tariff whose category is
# the consumer's ``tariff_category``. ``amperes``: the supply's ampere rating (Nepal prices by it).
tariff_assignments = Table(
    "tariff_assignments",
    metadata,
    Column("consumer_id", String(64), ForeignKey("consumers.id"), primary_key=True),
    Column("from_date", Date, primary_key=True),
    Column("tariff_id", String(64), ForeignKey("tariffs.id"), nullable=False),
    Column("category", String(64)),
    Column("amperes", Integer),
)

bill_numbers = Table(
    "bill_numbers",
    metadata,
    Column("utility", String(16), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("next_number", BigInteger, nullable=False),
)

bill_runs = Table(
    "bill_runs",
    metadata,
    Column("period", String(7), primary_key=True),  # YYYY-MM of the period's first day
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),  # exclusive
    Column("status", String(16), nullable=False),  # running | finished | failed
    Column("started_at", UTC_TS, nullable=False),
    Column("finished_at", UTC_TS),
    Column("consumers", Integer, nullable=False, server_default="0"),
    Column("issued", Integer, nullable=False, server_default="0"),
    Column("skipped", Integer, nullable=False, server_default="0"),
    Column("failed", Integer, nullable=False, server_default="0"),
    Column("errors", JSON),  # [{consumer_id, code, message}] of the latest attempt
)

bills = Table(
    "bills",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("number", String(32), nullable=False, unique=True),
    Column("consumer_id", String(64), ForeignKey("consumers.id"), nullable=False),
    Column("meter_id", String(64), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),  # exclusive
    Column("issued_at", UTC_TS, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total", MONEY, nullable=False),
    Column("status", String(16), nullable=False, server_default="issued"),  # issued | cancelled
    Column("tariff_id", String(64), nullable=False),
    Column("tariff_version", Date, nullable=False),  # effective_from of the last version used
    Column("import_kwh", QUANTITY, nullable=False),
    Column("export_kwh", QUANTITY, nullable=False),
    Column("intervals", Integer, nullable=False),
    Column("estimated_intervals", Integer, nullable=False),
    Column("estimated_dates", JSON, nullable=False),  # local dates with estimated intervals
    Column("document", JSON, nullable=False),  # determinants, lines, consumer, usage, comparisons
    UniqueConstraint("consumer_id", "period_start"),
    Index("ix_bills_period_start", "period_start"),
)

bill_lines = Table(
    "bill_lines",
    metadata,
    Column("bill_id", BigInteger, ForeignKey("bills.id"), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("code", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("description", Text, nullable=False),
    Column("quantity", QUANTITY),
    Column("unit", String(16)),
    Column("rate", QUANTITY),
    Column("amount", MONEY, nullable=False),
    Column("part_start", Date),
    Column("part_end", Date),  # exclusive
    Column("tariff_version", Date),
)

bill_adjustments = Table(
    "bill_adjustments",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("bill_id", BigInteger, ForeignKey("bills.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # adjustment | credit_note
    Column("amount", MONEY, nullable=False),  # negative: in the consumer's favour
    Column("reason", Text, nullable=False),
    Column("created_at", UTC_TS, nullable=False),
    Column("created_by", Text),
    Index("ix_bill_adjustments_bill_id", "bill_id"),
)
