"""SQL for who is billed: the active consumers and their active meters, page by page, and the
move-out that ends a consumer's supply. No commits here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection, and_, select, update

from meterhub.store import meters as meter_store
from meterhub.store import schema


class BillableMeter(NamedTuple):
    consumer_id: str
    consumer_name: str
    address: str | None
    email: str | None
    phone: str | None
    tariff_category: str | None
    meter_id: str
    sanctioned_load_kw: float | None


def billable_meters(conn: Connection, *, after: str | None, consumers: int) -> list[BillableMeter]:
    """Active consumer meters of the next ``consumers`` active consumers after id ``after``."""
    c, m = schema.consumers, schema.meters
    page = (
        select(c.c.id)
        .where(c.c.status == "active")
        .where(c.c.id.in_(select(m.c.consumer_id).where(m.c.status == "active")))
        .order_by(c.c.id)
        .limit(consumers)
    )
    if after is not None:
        page = page.where(c.c.id > after)
    return billable_meters_of(conn, [row.id for row in conn.execute(page)])


def billable_meters_of(conn: Connection, ids: Sequence[str]) -> list[BillableMeter]:
    """The active consumer meters of these consumers, in consumer and meter id order."""
    c, m = schema.consumers, schema.meters
    if not ids:
        return []
    rows = conn.execute(
        select(
            c.c.id,
            c.c.name,
            c.c.address,
            c.c.email,
            c.c.phone,
            c.c.tariff_category,
            m.c.id.label("meter_id"),
            m.c.sanctioned_load_kw,
        )
        .join(m, and_(m.c.consumer_id == c.c.id, m.c.status == "active"))
        .where(c.c.id.in_(list(ids)), m.c.role == "consumer")
        .order_by(c.c.id, m.c.id)
    ).all()
    return [BillableMeter(*row) for row in rows]


def close_consumer(
    conn: Connection, consumer_id: str, meter_ids: Sequence[str], at: datetime, now: datetime
) -> None:
    """A move-out: the account is closed, its meters stop serving it at ``at`` and lose
    broker access (a new occupant is a new consumer, connected anew)."""
    c, m = schema.consumers, schema.meters
    conn.execute(update(c).where(c.c.id == consumer_id).values(status="closed"))
    conn.execute(update(m).where(m.c.id.in_(list(meter_ids))).values(status="inactive"))
    for meter_id in meter_ids:
        meter_store.record_removal(conn, consumer_id=consumer_id, meter_id=meter_id, at=at, now=now)


def consumer_name(conn: Connection, consumer_id: str) -> str | None:
    """The consumer's name; None for an unknown consumer."""
    c = schema.consumers
    name = conn.execute(select(c.c.name).where(c.c.id == consumer_id)).scalar()
    return None if name is None else str(name)


def sanctioned_load(conn: Connection, meter_id: str) -> float | None:
    """The meter's sanctioned load in kW, if it has one."""
    m = schema.meters
    load = conn.execute(select(m.c.sanctioned_load_kw).where(m.c.id == meter_id)).scalar()
    return None if load is None else float(load)
