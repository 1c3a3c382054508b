"""SQL for tariffs: the stored tariff documents and which consumer is on which tariff.

A tariff is stored as its JSON document (what ``meterhub bill load-tariff`` validated); this
module hands documents back as plain data, and billing validates them into its tariff type.
Functions take a ``Connection`` and never commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, insert, select, update

from meterhub.store.schema_billing import tariff_assignments, tariffs


def save_tariff(
    conn: Connection,
    tariff_id: str,
    *,
    name: str,
    category: str | None,
    currency: str,
    document: Mapping[str, Any],
    source_file: str | None,
    loaded_at: datetime,
) -> None:
    """Store (or replace) the document stored under ``tariff_id``."""
    values = {
        "name": name,
        "category": category,
        "currency": currency,
        "document": dict(document),
        "source_file": source_file,
        "loaded_at": loaded_at,
    }
    changed = conn.execute(update(tariffs).where(tariffs.c.id == tariff_id).values(**values))
    if changed.rowcount == 0:
        conn.execute(insert(tariffs).values(id=tariff_id, **values))


def tariff_documents(conn: Connection) -> dict[str, Any]:
    """Every stored tariff document, by id."""
    rows = conn.execute(select(tariffs.c.id, tariffs.c.document)).all()
    return {row.id: row.document for row in rows}


def tariff_document(conn: Connection, tariff_id: str) -> Any | None:
    query = select(tariffs.c.document).where(tariffs.c.id == tariff_id)
    return conn.execute(query).scalar()


def tariff_categories(conn: Connection) -> dict[str, str]:
    """Category -> tariff id, for consumers without an explicit assignment."""
    rows = conn.execute(select(tariffs.c.category, tariffs.c.id).order_by(tariffs.c.id)).all()
    return {row.category: row.id for row in rows if row.category}


def tariff_currency(conn: Connection, tariff_id: str) -> str | None:
    query = select(tariffs.c.currency).where(tariffs.c.id == tariff_id)
    currency = conn.execute(query).scalar()
    return None if currency is None else str(currency)


def assign_tariff(
    conn: Connection,
    consumer_id: str,
    tariff_id: str,
    from_date: date,
    *,
    category: str | None = None,
    amperes: int | None = None,
) -> None:
    conn.execute(
        insert(tariff_assignments).values(
            consumer_id=consumer_id,
            tariff_id=tariff_id,
            from_date=from_date,
            category=category,
            amperes=amperes,
        )
    )


class Assignment(NamedTuple):
    tariff_id: str
    amperes: int | None


def assignments_on(
    conn: Connection, consumer_ids: Sequence[str], day: date
) -> dict[str, Assignment]:
    """The assignment in force on ``day`` for each consumer that has one."""
    t = tariff_assignments
    rows = conn.execute(
        select(t.c.consumer_id, t.c.from_date, t.c.tariff_id, t.c.amperes)
        .where(t.c.consumer_id.in_(consumer_ids), t.c.from_date <= day)
        .order_by(t.c.consumer_id, t.c.from_date)
    ).all()
    # Ordered by date: the last row per consumer is the one in force.
    return {row.consumer_id: Assignment(row.tariff_id, row.amperes) for row in rows}


def latest_amperes(conn: Connection, consumer_id: str) -> int | None:
    """The ampere rating of the consumer's latest assignment, if it has one."""
    t = tariff_assignments
    query = (
        select(t.c.amperes)
        .where(t.c.consumer_id == consumer_id)
        .order_by(t.c.from_date.desc())
        .limit(1)
    )
    amperes = conn.execute(query).scalar()
    return None if amperes is None else int(amperes)
