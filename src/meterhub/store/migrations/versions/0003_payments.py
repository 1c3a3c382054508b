"""Payments: the consumer ledger, payments, payment allocations, receipts.

Written out in full (not created from the current metadata) so that this revision stays what it
was when later revisions change the schema.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MONEY = sa.Numeric(precision=14, scale=2)


def upgrade() -> None:
    op.create_table(
        "ledger_entries",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("consumer_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.CheckConstraint(
            "kind IN ('bill', 'payment', 'adjustment', 'credit_note', 'late_fee', 'rebate')",
            name=op.f("ck_ledger_entries_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["consumer_id"], ["consumers.id"], name=op.f("fk_ledger_entries_consumer_id_consumers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    op.create_index(
        "ix_ledger_entries_consumer_at", "ledger_entries", ["consumer_id", "at"], unique=False
    )
    op.create_index("ix_ledger_entries_ref", "ledger_entries", ["ref"], unique=False)
    op.create_table(
        "payments",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("consumer_id", sa.String(length=64), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("gateway", sa.String(length=32), nullable=True),
        sa.Column("gateway_reference", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="completed", nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entered_by", sa.String(length=128), nullable=True),
        sa.Column("notice", sa.JSON(), nullable=True),
        sa.CheckConstraint(
            "method IN ('cash', 'cheque', 'gateway')", name=op.f("ck_payments_method")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payments_amount_positive")),
        sa.ForeignKeyConstraint(
            ["consumer_id"], ["consumers.id"], name=op.f("fk_payments_consumer_id_consumers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("gateway_reference", name=op.f("uq_payments_gateway_reference")),
    )
    op.create_index(
        "ix_payments_consumer_received", "payments", ["consumer_id", "received_at"], unique=False
    )
    op.create_table(
        "payment_allocations",
        sa.Column("payment_id", ID, nullable=False),
        sa.Column("bill_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.ForeignKeyConstraint(
            ["bill_id"], ["bills.id"], name=op.f("fk_payment_allocations_bill_id_bills")
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_payment_allocations_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("payment_id", "bill_id", name=op.f("pk_payment_allocations")),
    )
    op.create_table(
        "receipts",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("payment_id", ID, nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_receipts_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receipts")),
        sa.UniqueConstraint("number", name=op.f("uq_receipts_number")),
        sa.UniqueConstraint("payment_id", name=op.f("uq_receipts_payment_id")),
    )


def downgrade() -> None:
    op.drop_table("receipts")
    op.drop_table("payment_allocations")
    op.drop_index("ix_payments_consumer_received", table_name="payments")
    op.drop_table("payments")
    op.drop_index("ix_ledger_entries_ref", table_name="ledger_entries")
    op.drop_index("ix_ledger_entries_consumer_at", table_name="ledger_entries")
    op.drop_table("ledger_entries")
