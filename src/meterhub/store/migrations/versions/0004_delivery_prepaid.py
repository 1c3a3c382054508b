"""Bill delivery (preferences, deliveries) and prepaid accounts (accounts, top-ups, charges).

Written out in full (not created from the current metadata) so that this revision stays what it
was when later revisions change the schema. ``deliveries.subject_id`` is a plain id: it names a
bill, a receipt or a warning event depending on ``kind``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MONEY = sa.Numeric(precision=18, scale=6)


def upgrade() -> None:
    op.create_table(
        "delivery_preferences",
        sa.Column("consumer_id", sa.String(length=64), nullable=False),
        sa.Column("channels", sa.String(length=8), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["consumer_id"],
            ["consumers.id"],
            name=op.f("fk_delivery_preferences_consumer_id_consumers"),
        ),
        sa.PrimaryKeyConstraint("consumer_id", name=op.f("pk_delivery_preferences")),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("consumer_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["consumer_id"], ["consumers.id"], name=op.f("fk_deliveries_consumer_id_consumers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("kind", "subject_id", "channel", name=op.f("uq_deliveries_kind")),
    )
    op.create_index("ix_deliveries_consumer", "deliveries", ["consumer_id"], unique=False)
    op.create_index(
        "ix_deliveries_status_next", "deliveries", ["status", "next_attempt_at"], unique=False
    )
    op.create_table(
        "prepaid_accounts",
        sa.Column("consumer_id", sa.String(length=64), nullable=False),
        sa.Column("meter_id", sa.String(length=64), nullable=False),
        sa.Column("tariff_id", sa.String(length=64), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accrued_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("supply_state", sa.String(length=24), server_default="connected", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["consumer_id"],
            ["consumers.id"],
            name=op.f("fk_prepaid_accounts_consumer_id_consumers"),
        ),
        sa.ForeignKeyConstraint(
            ["meter_id"], ["meters.id"], name=op.f("fk_prepaid_accounts_meter_id_meters")
        ),
        sa.ForeignKeyConstraint(
            ["tariff_id"], ["tariffs.id"], name=op.f("fk_prepaid_accounts_tariff_id_tariffs")
        ),
        sa.PrimaryKeyConstraint("consumer_id", name=op.f("pk_prepaid_accounts")),
    )
    op.create_table(
        "prepaid_charges",
        sa.Column("consumer_id", sa.String(length=64), nullable=False),
        sa.Column("interval_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=False),
        sa.Column("kwh", MONEY, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("charged_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["consumer_id"],
            ["prepaid_accounts.consumer_id"],
            name=op.f("fk_prepaid_charges_consumer_id_prepaid_accounts"),
        ),
        sa.PrimaryKeyConstraint("consumer_id", "interval_start", name=op.f("pk_prepaid_charges")),
    )
    op.create_table(
        "prepaid_topups",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("consumer_id", sa.String(length=64), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=False),
        sa.Column("payment_id", sa.BigInteger(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["consumer_id"],
            ["prepaid_accounts.consumer_id"],
            name=op.f("fk_prepaid_topups_consumer_id_prepaid_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_prepaid_topups_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prepaid_topups")),
        sa.UniqueConstraint("reference", name=op.f("uq_prepaid_topups_reference")),
    )
    op.create_index("ix_prepaid_topups_consumer", "prepaid_topups", ["consumer_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_prepaid_topups_consumer", table_name="prepaid_topups")
    op.drop_table("prepaid_topups")
    op.drop_table("prepaid_charges")
    op.drop_table("prepaid_accounts")
    op.drop_index("ix_deliveries_status_next", table_name="deliveries")
    op.drop_index("ix_deliveries_consumer", table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_table("delivery_preferences")
