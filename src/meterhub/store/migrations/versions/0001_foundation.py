"""Foundation: hierarchy, meters, readings, intervals, events, dead letters, counters.

Written out in full (not created from the current metadata) so that this revision stays what it
was when later revisions change the schema.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Readings and intervals are range-partitioned by time on PostgreSQL; store.partitions creates
# the monthly partitions ahead of the data, and these DEFAULT partitions catch anything else.
PARTITIONED = ("readings", "intervals")


def upgrade() -> None:
    op.create_table(
        "consumers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("tariff_category", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consumers")),
    )
    op.create_table(
        "dead_letters",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("meter_id", sa.String(length=64), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("reason_code", sa.String(length=48), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
    )
    op.create_index("ix_dead_letters_reason", "dead_letters", ["reason_code"], unique=False)
    op.create_index("ix_dead_letters_received", "dead_letters", ["received_at"], unique=False)
    op.create_table(
        "events",
        sa.Column("meter_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("type", sa.String(length=48), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("meter_id", "id", name=op.f("pk_events")),
    )
    op.create_index("ix_events_meter_ts", "events", ["meter_id", "ts"], unique=False)
    op.create_index("ix_events_type_ts", "events", ["type", "ts"], unique=False)
    op.create_table(
        "feeders",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("substation", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feeders")),
    )
    op.create_table(
        "ingest_counters",
        sa.Column("worker_id", sa.String(length=128), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=48), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("worker_id", "outcome", "reason", name=op.f("pk_ingest_counters")),
    )
    op.create_table(
        "interval_work",
        sa.Column("meter_id", sa.String(length=64), nullable=False),
        sa.Column("from_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("to_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("meter_id", name=op.f("pk_interval_work")),
    )
    op.create_table(
        "intervals",
        sa.Column("meter_id", sa.String(length=64), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=False),
        sa.Column("import_kwh", sa.Float(), nullable=False),
        sa.Column("export_kwh", sa.Float(), nullable=False),
        sa.Column("quality", sa.String(length=12), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("meter_id", "start", name=op.f("pk_intervals")),
        postgresql_partition_by="RANGE (start)",
    )
    op.create_table(
        "readings",
        sa.Column("meter_id", sa.String(length=64), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("import_kwh", sa.Float(), nullable=True),
        sa.Column("export_kwh", sa.Float(), nullable=True),
        sa.Column("import_kwh_by_tariff", sa.JSON(), nullable=True),
        sa.Column("power_w", sa.Float(), nullable=True),
        sa.Column("voltage_v", sa.Float(), nullable=True),
        sa.Column("current_a", sa.Float(), nullable=True),
        sa.Column("pf", sa.Float(), nullable=True),
        sa.Column("freq_hz", sa.Float(), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.Column("quality", sa.String(length=12), server_default="actual", nullable=False),
        sa.Column("flags", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("meter_id", "ts", name=op.f("pk_readings")),
        postgresql_partition_by="RANGE (ts)",
    )
    op.create_table(
        "transformers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("feeder_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("capacity_kva", sa.Float(), nullable=True),
        sa.Column("main_meter_id", sa.String(length=64), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["feeder_id"], ["feeders.id"], name=op.f("fk_transformers_feeder_id_feeders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transformers")),
    )
    op.create_table(
        "meters",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("consumer_id", sa.String(length=64), nullable=True),
        sa.Column("transformer_id", sa.String(length=64), nullable=True),
        sa.Column("feeder_id", sa.String(length=64), nullable=True),
        sa.Column("role", sa.String(length=24), server_default="consumer", nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("sanctioned_load_kw", sa.Float(), nullable=True),
        sa.Column("phase", sa.Integer(), server_default="1", nullable=False),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("firmware", sa.Text(), nullable=True),
        sa.Column("register_max_kwh", sa.Float(), nullable=True),
        sa.Column("relay_state", sa.String(length=16), server_default="connected", nullable=False),
        sa.Column("status", sa.String(length=24), server_default="active", nullable=False),
        sa.Column("replaced_by", sa.String(length=64), nullable=True),
        sa.Column("credential_hash", sa.Text(), nullable=True),
        sa.Column("online", sa.Boolean(), nullable=True),
        sa.Column("online_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status_payload", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["consumer_id"], ["consumers.id"], name=op.f("fk_meters_consumer_id_consumers")
        ),
        sa.ForeignKeyConstraint(
            ["feeder_id"], ["feeders.id"], name=op.f("fk_meters_feeder_id_feeders")
        ),
        sa.ForeignKeyConstraint(
            ["transformer_id"],
            ["transformers.id"],
            name=op.f("fk_meters_transformer_id_transformers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meters")),
    )

    if op.get_bind().dialect.name == "postgresql":
        for name in PARTITIONED:
            op.execute(f'CREATE TABLE "{name}_default" PARTITION OF "{name}" DEFAULT')


def downgrade() -> None:
    op.drop_table("meters")
    op.drop_table("transformers")
    op.drop_table("readings")
    op.drop_table("intervals")
    op.drop_table("interval_work")
    op.drop_table("ingest_counters")
    op.drop_table("feeders")
    op.drop_table("events")
    op.drop_table("dead_letters")
    op.drop_table("consumers")
