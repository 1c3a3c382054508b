"""Why a write failed: the database (retry the same rows later) or the rows (find and refuse them).

The ingest worker acknowledges nothing it has not committed. When the database is away (connection
lost or refused, read-only after a failover, disk full, shut down by an operator) the right answer
is to wait and write the same batch again: the broker keeps the messages. When the rows themselves
are the problem (a value the column cannot take, a character the encoding cannot hold) waiting
changes nothing, and retrying forever stops ingestion for every meter: those rows must be found
and refused. Anything not known to be the database's fault counts as the rows', because the cost
of that mistake is a dead letter that keeps the message, while the other mistake stalls everyone.
"""

from __future__ import annotations

import sqlite3

import psycopg
from sqlalchemy import exc as sa_exc

# SQLSTATE classes and codes that describe the server or the connection, not the statement's data
# (PostgreSQL Appendix A).
_TRANSIENT_CLASSES = frozenset(
    {
        "08",  # connection exception
        "53",  # insufficient resources: disk full, out of memory, too many connections
        "57",  # operator intervention: admin shutdown, crash shutdown, cannot connect now
        "58",  # system error: I/O error
        "40",  # transaction rollback: serialization failure, deadlock
    }
)
_TRANSIENT_CODES = frozenset(
    {
        "25006",  # read_only_sql_transaction: a standby, or the primary after a failover
        "55P03",  # lock_not_available
        "55006",  # object_in_use
        # Another transaction's DDL won a race (a partition created twice): the same rows
        # succeed when written again.
        "42P07",  # duplicate_table
        "42710",  # duplicate_object
    }
)
# SQLite reports a busy or full database through OperationalError messages only.
_SQLITE_TRANSIENT = (
    "database is locked",
    "database table is locked",
    "disk i/o error",
    "database or disk is full",
    "unable to open database",
    "readonly database",
)


def is_transient(error: BaseException) -> bool:
    """True when writing the same rows again later may succeed."""
    cause = error.orig if isinstance(error, sa_exc.DBAPIError) else error
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(cause, psycopg.Error):
        state = cause.sqlstate
        if state is None:
            # No SQLSTATE: the client library itself failed (connection closed, server gone).
            return isinstance(cause, psycopg.OperationalError | psycopg.InterfaceError)
        return state[:2] in _TRANSIENT_CLASSES or state in _TRANSIENT_CODES
    if isinstance(cause, sqlite3.OperationalError):
        text = str(cause).lower()
        return any(marker in text for marker in _SQLITE_TRANSIENT)
    return isinstance(
        error, sa_exc.DisconnectionError | sa_exc.TimeoutError | ConnectionError | TimeoutError
    )
