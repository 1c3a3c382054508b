"""Meter installation history: which meter served which consumer from when to when.

Written out in full (not created from the current metadata) so that this revision stays what it
was when later revisions change the schema. No rows are made for existing meters: a consumer
meter without rows has served its consumer throughout (``meterhub meter replace`` records both
meters of a swap).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "meter_installations",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("consumer_id", sa.String(length=64), nullable=False),
        sa.Column("meter_id", sa.String(length=64), nullable=False),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("initial_reading_kwh", sa.Float(), nullable=True),
        sa.Column("final_reading_kwh", sa.Float(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["consumer_id"],
            ["consumers.id"],
            name=op.f("fk_meter_installations_consumer_id_consumers"),
        ),
        sa.ForeignKeyConstraint(
            ["meter_id"], ["meters.id"], name=op.f("fk_meter_installations_meter_id_meters")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meter_installations")),
    )
    op.create_index(
        "ix_meter_installations_consumer",
        "meter_installations",
        ["consumer_id", "installed_at"],
        unique=False,
    )
    op.create_index(
        "ix_meter_installations_meter", "meter_installations", ["meter_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_meter_installations_meter", table_name="meter_installations")
    op.drop_index("ix_meter_installations_consumer", table_name="meter_installations")
    op.drop_table("meter_installations")
