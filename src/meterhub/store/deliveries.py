"""SQL for the delivery queue: consumers' delivery preferences, queued messages, claims with a
lease, each attempt's outcome. No commits here: the caller's transaction is the unit of work
(``billing.jobs.delivery`` keeps claims and outcomes in short transactions of their own)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    String,
    and_,
    cast,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)

from meterhub.store.dialects import skip_locked
from meterhub.store.schema import consumers
from meterhub.store.schema_billing import bills
from meterhub.store.schema_delivery import deliveries, delivery_preferences

# ---------------------------------------------------------------------------- preferences


def set_preference(
    conn: Connection,
    consumer_id: str,
    channels: str,
    *,
    email: str | None,
    phone: str | None,
    updated_at: datetime,
) -> None:
    values = {"channels": channels, "email": email, "phone": phone, "updated_at": updated_at}
    changed = conn.execute(
        update(delivery_preferences)
        .where(delivery_preferences.c.consumer_id == consumer_id)
        .values(**values)
    ).rowcount
    if not changed:
        conn.execute(insert(delivery_preferences).values(consumer_id=consumer_id, **values))


class Recipient(NamedTuple):
    name: str
    email: str | None  # the account's
    phone: str | None
    channels: str | None  # the stated preference, if any
    pref_email: str | None  # addresses the preference gives instead of the account's
    pref_phone: str | None


def recipient(conn: Connection, consumer_id: str) -> Recipient | None:
    """The consumer's name, addresses and delivery preference; None for an unknown consumer."""
    row = conn.execute(
        select(
            consumers.c.name,
            consumers.c.email,
            consumers.c.phone,
            delivery_preferences.c.channels,
            delivery_preferences.c.email.label("pref_email"),
            delivery_preferences.c.phone.label("pref_phone"),
        )
        .select_from(consumers.outerjoin(delivery_preferences))
        .where(consumers.c.id == consumer_id)
    ).first()
    return None if row is None else Recipient(*row)


# ---------------------------------------------------------------------------- queueing


def is_queued(conn: Connection, kind: str, subject_id: str, channel: str) -> bool:
    query = select(deliveries.c.id).where(
        deliveries.c.kind == kind,
        deliveries.c.subject_id == subject_id,
        deliveries.c.channel == channel,
    )
    return conn.execute(query).first() is not None


def queue(
    conn: Connection,
    *,
    kind: str,
    subject_id: str,
    consumer_id: str,
    channel: str,
    address: str,
    subject: str,
    body: str,
    now: datetime,
) -> None:
    """A message due now, not yet tried."""
    conn.execute(
        insert(deliveries).values(
            kind=kind,
            subject_id=subject_id,
            consumer_id=consumer_id,
            channel=channel,
            address=address,
            subject=subject,
            body=body,
            status="queued",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )


def unqueued_issued_bills(conn: Connection) -> list[Row[Any]]:
    """Issued bills (``bills`` rows) with no bill delivery queued yet, by id."""
    queued_already = exists().where(
        deliveries.c.kind == "bill",
        deliveries.c.subject_id == cast(bills.c.id, String),
    )
    query = select(bills).where(bills.c.status == "issued", ~queued_already).order_by(bills.c.id)
    return list(conn.execute(query).all())


# ---------------------------------------------------------------------------- sending


def _due(now: datetime) -> ColumnElement[bool]:
    return and_(
        deliveries.c.status.in_(("queued", "failed")),
        deliveries.c.next_attempt_at.is_not(None),
        deliveries.c.next_attempt_at <= now,
        or_(deliveries.c.claimed_until.is_(None), deliveries.c.claimed_until <= now),
    )


def count_due_elsewhere(conn: Connection, channel_names: Sequence[str], now: datetime) -> int:
    """Deliveries due now on a channel not in ``channel_names``."""
    query = select(func.count()).where(_due(now), deliveries.c.channel.not_in(channel_names))
    return int(conn.execute(query).scalar_one())


def claim(
    conn: Connection,
    channel_names: Sequence[str],
    now: datetime,
    token: str,
    count: int,
    claimed_until: datetime,
) -> tuple[bool, list[Row[Any]]]:
    """Take up to ``count`` due rows on these channels for the sender ``token``; returns
    whether any row was due and the rows claimed. The lease is set only where the row is still
    due and unclaimed, so of two senders racing for a row exactly one gets it.

    Two statements, not ``UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)``:
    PostgreSQL may rescan such a subquery per row and then claims far more than ``n``."""
    candidates = skip_locked(
        conn,
        select(deliveries.c.id)
        .where(_due(now), deliveries.c.channel.in_(channel_names))
        .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
        .limit(count),
    )
    ids = list(conn.execute(candidates).scalars())
    if not ids:
        return False, []
    conn.execute(
        update(deliveries)
        .where(deliveries.c.id.in_(ids), _due(now))
        .values(claimed_until=claimed_until, claim_token=token)
    )
    claimed = conn.execute(
        select(deliveries)
        .where(deliveries.c.claim_token == token)
        .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
    ).all()
    return True, list(claimed)


def record_outcome(
    conn: Connection, delivery_id: int, token: str, values: Mapping[str, Any]
) -> bool:
    """Store an attempt's outcome and clear the claim, if ``token`` still holds the row;
    False when the lease ran out and another sender took it over."""
    changed = conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id, deliveries.c.claim_token == token)
        .values(**values, claimed_until=None, claim_token=None)
    ).rowcount
    return bool(changed)


def list_deliveries(
    conn: Connection, *, failed_only: bool = False, limit: int = 500
) -> list[dict[str, Any]]:
    """Deliveries, newest first; ``failed_only``: those whose last attempt failed."""
    query = select(
        deliveries.c.id,
        deliveries.c.kind,
        deliveries.c.subject_id,
        deliveries.c.consumer_id,
        deliveries.c.channel,
        deliveries.c.address,
        deliveries.c.status,
        deliveries.c.attempts,
        deliveries.c.last_error,
        deliveries.c.next_attempt_at,
        deliveries.c.sent_at,
    )
    if failed_only:
        query = query.where(deliveries.c.status == "failed")
    rows = conn.execute(query.order_by(deliveries.c.id.desc()).limit(limit)).all()
    return [{str(key): value for key, value in row._mapping.items()} for row in rows]


def retry_now(conn: Connection, now: datetime) -> int:
    """Make every failed delivery due now, including those that used up their attempts."""
    return conn.execute(
        update(deliveries)
        .where(
            deliveries.c.status == "failed",
            # A row a sender holds right now is left to it: its outcome is about to be recorded.
            or_(deliveries.c.claimed_until.is_(None), deliveries.c.claimed_until <= now),
        )
        .values(next_attempt_at=now, attempts=0)
    ).rowcount
