"""SQL for consumer accounts: the ``consumers`` rows and the tariff assignments an account shows.

Functions take a ``Connection`` and never commit. Rows come back as named tuples of plain values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, insert, select

from meterhub.store.keys import ids_present
from meterhub.store.schema import consumers
from meterhub.store.schema_billing import tariff_assignments


class ConsumerRow(NamedTuple):
    id: str
    name: str
    email: str | None
    phone: str | None
    address: str | None
    tariff_category: str | None
    status: str
    created_at: datetime


class AssignmentRow(NamedTuple):
    from_date: date
    tariff_id: str
    amperes: int | None


def consumer_exists(conn: Connection, consumer_id: str) -> bool:
    query = select(consumers.c.id).where(consumers.c.id == consumer_id)
    return conn.execute(query).first() is not None


def existing_consumers(conn: Connection, consumer_ids: Iterable[str]) -> set[str]:
    return ids_present(conn, consumers.c.id, consumer_ids)


def load_consumer(conn: Connection, consumer_id: str) -> ConsumerRow | None:
    query = select(*(consumers.c[name] for name in ConsumerRow._fields)).where(
        consumers.c.id == consumer_id
    )
    row = conn.execute(query).first()
    return None if row is None else ConsumerRow(*row)


def insert_consumer(
    conn: Connection,
    *,
    consumer_id: str,
    name: str,
    email: str | None,
    phone: str | None,
    address: str | None,
    category: str | None,
    now: datetime,
) -> None:
    conn.execute(
        insert(consumers).values(
            id=consumer_id,
            name=name,
            email=email,
            phone=phone,
            address=address,
            tariff_category=category,
            status="active",
            created_at=now,
        )
    )


def insert_consumers(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Many accounts at once (a fleet registered in one go); ``rows``: columns of ``consumers``."""
    if rows:
        conn.execute(insert(consumers), list(rows))


def tariff_assignments_of(conn: Connection, consumer_id: str) -> list[AssignmentRow]:
    """Every tariff assignment of the consumer, oldest first."""
    t = tariff_assignments
    rows = conn.execute(
        select(t.c.from_date, t.c.tariff_id, t.c.amperes)
        .where(t.c.consumer_id == consumer_id)
        .order_by(t.c.from_date)
    )
    return [AssignmentRow(*row) for row in rows]


def tariff_starting(conn: Connection, consumer_id: str, from_date: date) -> str | None:
    """The tariff of the assignment that starts on ``from_date``, if there is one."""
    t = tariff_assignments
    query = select(t.c.tariff_id).where(t.c.consumer_id == consumer_id, t.c.from_date == from_date)
    tariff_id = conn.execute(query).scalar()
    return None if tariff_id is None else str(tariff_id)
