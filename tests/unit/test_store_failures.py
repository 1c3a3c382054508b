"""Which write failures mean 'the database is away' (wait) and which mean 'these rows' (refuse)."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from psycopg import errors
from sqlalchemy import exc as sa_exc

from meterhub.store.failures import is_transient


def wrapped(orig: BaseException, *, invalidated: bool = False) -> BaseException:
    return sa_exc.DBAPIError.instance(
        "INSERT ...", {}, orig, Exception, connection_invalidated=invalidated
    )


@pytest.mark.parametrize(
    "error",
    [
        errors.AdminShutdown(),  # 57P01: the server is shutting down
        errors.CannotConnectNow(),  # 57P03: starting up or in recovery
        errors.ReadOnlySqlTransaction(),  # 25006: a standby, or after a failover
        errors.DiskFull(),  # 53100
        errors.TooManyConnections(),  # 53300
        errors.ConnectionFailure(),  # 08006
        errors.SerializationFailure(),  # 40001
        errors.DeadlockDetected(),  # 40P01
        errors.IoError(),  # 58030
        errors.LockNotAvailable(),  # 55P03
        errors.DuplicateTable(),  # 42P07: two workers created the same new partition
        psycopg.OperationalError("server closed the connection unexpectedly"),
    ],
)
def test_the_database_being_away_is_transient(error: BaseException) -> None:
    assert is_transient(wrapped(error))


@pytest.mark.parametrize(
    "error",
    [
        errors.NumericValueOutOfRange(),  # 22003
        errors.UntranslatableCharacter(),  # 22P05: \u0000 in jsonb
        errors.CharacterNotInRepertoire(),  # 22021: NUL in text
        errors.InvalidTextRepresentation(),  # 22P02
        errors.StringDataRightTruncation(),  # 22001
        errors.CheckViolation(),  # 23514
        errors.ForeignKeyViolation(),  # 23503
        psycopg.DataError("int too large"),
    ],
)
def test_rows_the_database_cannot_take_are_not_transient(error: BaseException) -> None:
    assert not is_transient(wrapped(error))


def test_a_dropped_connection_is_transient_whatever_the_error() -> None:
    assert is_transient(wrapped(psycopg.DatabaseError("?"), invalidated=True))


@pytest.mark.parametrize(
    ("text", "transient"),
    [
        ("database is locked", True),
        ("database or disk is full", True),
        ("disk I/O error", True),
        ("attempt to write a readonly database", True),
        ("no such table: readings", False),
    ],
)
def test_sqlite_operational_errors_by_their_text(text: str, transient: bool) -> None:
    assert is_transient(wrapped(sqlite3.OperationalError(text))) is transient


def test_errors_raised_in_python_while_building_rows_are_the_rows_fault() -> None:
    assert not is_transient(ValueError("bad value"))
    assert not is_transient(OverflowError("int too large"))
    assert not is_transient(TypeError("Dict key must be str"))
