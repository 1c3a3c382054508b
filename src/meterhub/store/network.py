"""SQL for the network hierarchy above the meters: feeders and transformers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, insert, select

from meterhub.store.keys import ids_present
from meterhub.store.schema import feeders, transformers


def transformer_exists(conn: Connection, transformer_id: str) -> bool:
    query = select(transformers.c.id).where(transformers.c.id == transformer_id)
    return conn.execute(query).first() is not None


def existing_transformers(conn: Connection, transformer_ids: Iterable[str]) -> set[str]:
    return ids_present(conn, transformers.c.id, transformer_ids)


def insert_feeders(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """``rows``: columns of ``feeders``."""
    if rows:
        conn.execute(insert(feeders), list(rows))


def insert_transformers(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """``rows``: columns of ``transformers``."""
    if rows:
        conn.execute(insert(transformers), list(rows))
