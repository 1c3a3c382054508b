"""The migrations build exactly the schema the code describes, on both databases."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text

from meterhub.store.partitions import is_partition
from meterhub.store.tables import metadata

pytestmark = pytest.mark.integration


def test_migrated_schema_matches_the_table_definitions(any_engine: Engine) -> None:
    options = {"include_name": lambda name, kind, _: not (kind == "table" and is_partition(name))}
    with any_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts=options)
        differences = compare_metadata(context, metadata)
    # A change to store/schema.py without a migration shows up here.
    assert differences == []


def test_time_series_tables_are_partitioned_on_postgresql(pg_engine: Engine) -> None:
    with pg_engine.connect() as conn:
        kinds: dict[str, str] = dict(
            conn.execute(
                text(
                    "SELECT c.relname, p.partstrat FROM pg_partitioned_table p "
                    "JOIN pg_class c ON c.oid = p.partrelid"
                )
            ).all()
        )
    assert kinds == {"readings": "r", "intervals": "r"}  # r = range
