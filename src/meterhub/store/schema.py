"""Tables, as SQLAlchemy Core metadata shared by SQLite and PostgreSQL.

Every table that grows with the fleet carries ``meter_id`` in its primary key so that it can be
distributed by meter with Citus. ``readings`` and ``intervals`` are range-partitioned by time on
PostgreSQL (the migration creates them partitioned; see ``store.partitions``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are UTC in every database. PostgreSQL's timestamptz converts by itself; SQLite
    stores wall-clock text, so an aware bound like +05:45 would be compared as local time and
    results would come back naive. Converting on the way in and labelling on the way out makes
    both behave the same."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC instant is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


UTC_TS = UTCDateTime()

feeders = Table(
    "feeders",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("substation", Text),
    Column("created_at", UTC_TS, nullable=False),
)

transformers = Table(
    "transformers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("feeder_id", String(64), ForeignKey("feeders.id")),
    Column("name", Text, nullable=False),
    Column("capacity_kva", Float),
    # The transformer's own main meter is a row of ``meters`` with role 'transformer_main'.
    Column("main_meter_id", String(64)),
    Column("latitude", Float),
    Column("longitude", Float),
    Column("created_at", UTC_TS, nullable=False),
)

consumers = Table(
    "consumers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("email", Text),
    Column("phone", Text),
    Column("address", Text),
    Column("tariff_category", String(64)),
    Column("status", String(16), nullable=False, server_default="active"),
    Column("created_at", UTC_TS, nullable=False),
)

meters = Table(
    "meters",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("consumer_id", String(64), ForeignKey("consumers.id")),
    Column("transformer_id", String(64), ForeignKey("transformers.id")),
    Column("feeder_id", String(64), ForeignKey("feeders.id")),
    # consumer | transformer_main | feeder_main | sub
    Column("role", String(24), nullable=False, server_default="consumer"),
    Column("latitude", Float),
    Column("longitude", Float),
    Column("sanctioned_load_kw", Float),
    Column("phase", Integer, nullable=False, server_default="1"),
    Column("model", Text),
    Column("firmware", Text),
    # Largest value the energy register can show before it wraps to zero (e.g. 99999.999 kWh).
    Column("register_max_kwh", Float),
    Column("relay_state", String(16), nullable=False, server_default="connected"),
    # active | inactive | replaced | auto_registered
    Column("status", String(24), nullable=False, server_default="active"),
    Column("replaced_by", String(64)),
    Column("credential_hash", Text),
    Column("online", Boolean),
    Column("online_changed_at", UTC_TS),
    Column("last_seen_at", UTC_TS),
    Column("status_payload", JSON),
    Column("created_at", UTC_TS, nullable=False),
)

# Which meter served which consumer from when to when (migration 0007). A consumer meter without
# rows here has served its consumer throughout; ``meterhub meter replace`` writes the rows of
# both meters of a swap. installed_at NULL: since before the history was kept.
meter_installations = Table(
    "meter_installations",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("consumer_id", String(64), ForeignKey("consumers.id"), nullable=False),
    Column("meter_id", String(64), ForeignKey("meters.id"), nullable=False),
    Column("installed_at", UTC_TS),
    Column("removed_at", UTC_TS),
    # Register readings (kWh) taken at installation and removal, as the installer wrote them.
    Column("initial_reading_kwh", Float),
    Column("final_reading_kwh", Float),
    Column("note", Text),
    Column("created_at", UTC_TS, nullable=False),
    Index("ix_meter_installations_consumer", "consumer_id", "installed_at"),
    Index("ix_meter_installations_meter", "meter_id"),
)

readings = Table(
    "readings",
    metadata,
    Column("meter_id", String(64), primary_key=True),
    Column("ts", UTC_TS, primary_key=True),
    Column("received_at", UTC_TS, nullable=False),
    Column("seq", BigInteger),
    Column("import_kwh", Float),
    Column("export_kwh", Float),
    Column("import_kwh_by_tariff", JSON),
    Column("power_w", Float),
    Column("voltage_v", Float),
    Column("current_a", Float),
    Column("pf", Float),
    Column("freq_hz", Float),
    Column("extra", JSON),
    Column("quality", String(12), nullable=False, server_default="actual"),
    # VEE findings as a comma-separated list of reason codes ('' when clean).
    Column("flags", Text, nullable=False, server_default=""),
)

intervals = Table(
    "intervals",
    metadata,
    Column("meter_id", String(64), primary_key=True),
    Column("start", UTC_TS, primary_key=True),
    Column("seconds", Integer, nullable=False),
    Column("import_kwh", Float, nullable=False),
    Column("export_kwh", Float, nullable=False),
    Column("quality", String(12), nullable=False),
    Column("computed_at", UTC_TS, nullable=False),
)

# Meters whose intervals must be recomputed over [from_ts, to_ts]; the deriver drains it.
interval_work = Table(
    "interval_work",
    metadata,
    Column("meter_id", String(64), primary_key=True),
    Column("from_ts", UTC_TS, nullable=False),
    Column("to_ts", UTC_TS, nullable=False),
    Column("queued_at", UTC_TS, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("meter_id", String(64), primary_key=True),
    # Deterministic (uuid5 over meter, ts, type and payload) so that a redelivery is a no-op.
    Column("id", String(36), primary_key=True),
    Column("ts", UTC_TS, nullable=False),
    Column("type", String(48), nullable=False),
    # meter | platform (VEE findings, conflicts, online/offline changes)
    Column("source", String(16), nullable=False),
    Column("payload", JSON),
    Column("received_at", UTC_TS, nullable=False),
    Index("ix_events_meter_ts", "meter_id", "ts"),
    Index("ix_events_type_ts", "type", "ts"),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("received_at", UTC_TS, nullable=False),
    Column("topic", Text, nullable=False),
    Column("meter_id", String(64)),
    Column("payload", LargeBinary, nullable=False),
    Column("reason_code", String(48), nullable=False),
    Column("message", Text, nullable=False),
    Index("ix_dead_letters_received", "received_at"),
    Index("ix_dead_letters_reason", "reason_code"),
)

ingest_counters = Table(
    "ingest_counters",
    metadata,
    Column("worker_id", String(128), primary_key=True),
    # accepted | rejected | duplicate | conflict
    Column("outcome", String(16), primary_key=True),
    Column("reason", String(48), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("updated_at", UTC_TS, nullable=False),
)
