"""Which of many ids a table holds, asked in chunks (an import checks tens of thousands)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Column, Connection, select

# Ids per IN (...) list: PostgreSQL takes far more, but a plan over a huge list costs more than
# several small ones, and SQLite's limit on bound parameters is 32,766.
LOOKUP_CHUNK = 5_000


def ids_present(conn: Connection, id_column: Column[str], keys: Iterable[str]) -> set[str]:
    """The subset of ``keys`` found in ``id_column``."""
    wanted = sorted(set(keys))
    found: set[str] = set()
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[start : start + LOOKUP_CHUNK]
        found.update(conn.execute(select(id_column).where(id_column.in_(chunk))).scalars())
    return found
