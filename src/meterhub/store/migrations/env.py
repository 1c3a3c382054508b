"""Alembic environment: runs against the connection handed over by ``store.migrate``."""

from __future__ import annotations

from alembic import context

from meterhub.store.partitions import is_partition
from meterhub.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the CLI always hands a connection over
    raise RuntimeError("run migrations through `meterhub db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    include_name=lambda name, kind, _parent: not (kind == "table" and is_partition(name)),
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
