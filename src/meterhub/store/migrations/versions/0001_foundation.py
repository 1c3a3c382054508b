"""Foundation: hierarchy, meters, readings, intervals, events, dead letters, counters.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

from meterhub.store.partitions import PARTITIONED_TABLES, create_partitioned_parent
from meterhub.store.schema import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    plain = [t for t in metadata.sorted_tables if t.name not in PARTITIONED_TABLES]
    if bind.dialect.name == "postgresql":
        metadata.create_all(bind, tables=plain)
        for name in PARTITIONED_TABLES:
            create_partitioned_parent(bind, metadata.tables[name])
    else:
        metadata.create_all(bind)


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
