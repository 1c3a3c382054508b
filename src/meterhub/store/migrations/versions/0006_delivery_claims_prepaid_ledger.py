"""Delivery leases (two senders never send one message twice) and the ``prepaid`` ledger kind
(prepaid usage mirrored on the consumer's ledger).

Written out in full (not created from the current metadata) so that this revision stays what it
was when later revisions change the schema. SQLite cannot alter a CHECK constraint: there the
ledger table is rebuilt from the definition below (Alembic batch mode), rows kept.

Revision 0005 was planned for another change; it did not exist when this one was written, so
this revision follows 0004. If 0005 lands, it must revise 0006 or this must revise 0005.

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"  # no 0005 existed when this was written; see the module docstring
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MONEY = sa.Numeric(precision=14, scale=2)
KINDS_0003 = "'bill', 'payment', 'adjustment', 'credit_note', 'late_fee', 'rebate'"
KINDS_0006 = KINDS_0003 + ", 'prepaid'"


def _ledger_entries(kinds: str) -> sa.Table:
    """ledger_entries as 0003 created it, with the given kinds allowed."""
    return sa.Table(
        "ledger_entries",
        sa.MetaData(),
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("consumer_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.CheckConstraint(f"kind IN ({kinds})", name="ck_ledger_entries_kind"),
        sa.ForeignKeyConstraint(
            ["consumer_id"], ["consumers.id"], name="fk_ledger_entries_consumer_id_consumers"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_entries"),
        sa.Index("ix_ledger_entries_consumer_at", "consumer_id", "at"),
        sa.Index("ix_ledger_entries_ref", "ref"),
    )


def _allow_kinds(new: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        # The table is rebuilt from this definition (its new CHECK included), rows copied.
        with op.batch_alter_table(
            "ledger_entries", recreate="always", copy_from=_ledger_entries(new)
        ):
            pass
        return
    op.drop_constraint(op.f("ck_ledger_entries_kind"), "ledger_entries", type_="check")
    op.create_check_constraint(op.f("ck_ledger_entries_kind"), "ledger_entries", f"kind IN ({new})")


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("claimed_until", sa.DateTime(timezone=True)))
    op.add_column("deliveries", sa.Column("claim_token", sa.String(length=32)))
    _allow_kinds(KINDS_0006)


def downgrade() -> None:
    op.execute("DELETE FROM ledger_entries WHERE kind = 'prepaid'")
    _allow_kinds(KINDS_0003)
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("claim_token")
        batch.drop_column("claimed_until")
