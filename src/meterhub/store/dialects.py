"""Where PostgreSQL and SQLite differ, decided here: the flavoured INSERT (both have ON CONFLICT),
an insert that skips a row already stored, the smaller and larger of two values, a
transaction-long lock, and row claims that skip rows another transaction holds. Store modules
ask these functions instead of the dialect's name. (What only PostgreSQL has, such as COPY and
partitions, is chosen with ``is_postgres``; ``db.py`` sets SQLite's connection pragmas.)
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Engine, Select, Table, func, text
from sqlalchemy.dialects import postgresql, sqlite

_Selected = TypeVar("_Selected", bound=tuple[Any, ...])
_T = TypeVar("_T")


def is_postgres(conn: Connection | Engine) -> bool:
    return conn.dialect.name == "postgresql"


def least(conn: Connection, a: ColumnElement[_T], b: ColumnElement[_T]) -> ColumnElement[_T]:
    """The smaller of two values: ``least`` in PostgreSQL, the two-argument ``min`` in SQLite."""
    return func.least(a, b) if is_postgres(conn) else func.min(a, b)


def greatest(conn: Connection, a: ColumnElement[_T], b: ColumnElement[_T]) -> ColumnElement[_T]:
    """The larger of two values: ``greatest`` in PostgreSQL, the two-argument ``max`` in SQLite."""
    return func.greatest(a, b) if is_postgres(conn) else func.max(a, b)


def dialect_insert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    if is_postgres(conn):
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_ignore(
    conn: Connection, table: Table, values: Mapping[str, object], keys: Sequence[str]
) -> postgresql.Insert | sqlite.Insert:
    """An insert that does nothing when a row with the same ``keys`` is already there."""
    return dialect_insert(conn, table).values(**values).on_conflict_do_nothing(index_elements=keys)


def transaction_lock(conn: Connection, key: str) -> None:
    """Serialise writers on ``key`` for the rest of the transaction. PostgreSQL: an advisory
    transaction lock; SQLite has one writer at a time anyway."""
    if is_postgres(conn):
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": zlib.crc32(key.encode())})


def skip_locked(conn: Connection, query: Select[_Selected]) -> Select[_Selected]:
    """``query`` taking row locks that skip rows other transactions hold (PostgreSQL), so that
    concurrent claimers take different rows; SQLite has one writer, the query as it is."""
    if is_postgres(conn):
        return query.with_for_update(skip_locked=True)
    return query
