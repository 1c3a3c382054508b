"""Bill delivery: queue bills, receipts and prepaid warnings per consumer preferences, send them
through the configured channels, record every attempt, retry failures with backoff.

Queueing renders the text once (``notify.templates``) and stores it in ``deliveries``, one row
per (kind, subject, channel), so a repeated run never queues twice and a retry sends the same
words. Sending happens outside the queueing transaction: each attempt's outcome is committed on
its own, so a crash half-way loses no record of what went out. Run one sender at a time (the
scheduler's job): two concurrent senders could send a due row twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Connection, Engine, Row, String, cast, exists, insert, select, update

from meterhub.notify.channels import Attachment, Channel, DeliveryResult, Message
from meterhub.notify.templates import render
from meterhub.store.schema import consumers
from meterhub.store.schema_delivery import deliveries, delivery_preferences
from meterhub.store.tables import metadata

Kind = Literal["bill", "receipt", "warning"]
Preference = Literal["email", "sms", "both", "none"]
CHANNELS_OF: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "sms": ("sms",),
    "both": ("email", "sms"),
    "none": (),
}
MAX_BACKOFF = timedelta(days=1)

# Attachments are made when a message is sent, not stored: (connection, kind, subject id).
AttachmentSource = Callable[[Connection, str, str], Sequence[Attachment]]


# ---------------------------------------------------------------------------- pure rules


def next_attempt_at(
    attempts: int, now: datetime, *, base_seconds: int, max_attempts: int
) -> datetime | None:
    """When to try again after ``attempts`` failed attempts: base, 2*base, 4*base, ... (at most a
    day); ``None`` once ``max_attempts`` have been made (the delivery stays failed, visible)."""
    if attempts >= max_attempts:
        return None
    delay = timedelta(seconds=base_seconds * 2 ** (attempts - 1))
    return now + min(delay, MAX_BACKOFF)


def addresses(
    preference: str | None,
    email: str | None,
    phone: str | None,
) -> dict[str, str]:
    """Channel -> address for a consumer. Without a stated preference, every channel the
    consumer has an address for; with one, only those channels (and only with an address)."""
    wanted = CHANNELS_OF[preference] if preference is not None else ("email", "sms")
    found = {"email": (email or "").strip(), "sms": (phone or "").strip()}
    return {channel: found[channel] for channel in wanted if found[channel]}


# ---------------------------------------------------------------------------- preferences


def set_preference(
    conn: Connection,
    consumer_id: str,
    channels: Preference,
    now: datetime,
    *,
    email: str | None = None,
    phone: str | None = None,
) -> None:
    if channels not in CHANNELS_OF:
        raise ValueError(f"channels must be one of {', '.join(CHANNELS_OF)}")
    values = {"channels": channels, "email": email, "phone": phone, "updated_at": now}
    changed = conn.execute(
        update(delivery_preferences)
        .where(delivery_preferences.c.consumer_id == consumer_id)
        .values(**values)
    ).rowcount
    if not changed:
        conn.execute(insert(delivery_preferences).values(consumer_id=consumer_id, **values))


def consumer_addresses(conn: Connection, consumer_id: str) -> tuple[str, dict[str, str]]:
    """The consumer's name and where their messages go, per their preferences."""
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
    if row is None:
        raise LookupError(f"no consumer {consumer_id}")
    return row.name, addresses(
        row.channels, row.pref_email or row.email, row.pref_phone or row.phone
    )


# ---------------------------------------------------------------------------- queueing


def enqueue(
    conn: Connection,
    kind: Kind,
    subject_id: str,
    consumer_id: str,
    values: Mapping[str, Any],
    now: datetime,
) -> int:
    """Queue the ``kind`` message about ``subject_id`` on each channel the consumer wants.
    Returns how many rows were queued (0 when they already were, or the consumer wants none)."""
    name, targets = consumer_addresses(conn, consumer_id)
    template = "low_balance" if kind == "warning" else kind
    queued = 0
    for channel, address in targets.items():
        already = conn.execute(
            select(deliveries.c.id).where(
                deliveries.c.kind == kind,
                deliveries.c.subject_id == subject_id,
                deliveries.c.channel == channel,
            )
        ).first()
        if already is not None:
            continue
        subject, body = render(
            template, channel, name=name, consumer_id=consumer_id, **dict(values)
        )
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
        queued += 1
    return queued


@dataclass(frozen=True, slots=True)
class BillNotice:
    """What a bill message says; B1's bills table supplies it (``enqueue_issued_bills``)."""

    bill_id: str
    number: str
    consumer_id: str
    total: Decimal
    currency: str
    due_date: str
    period: str


def enqueue_bill(
    conn: Connection, bill: BillNotice, now: datetime, *, link_url: str = "", attached: bool
) -> int:
    link = link_url.format(number=bill.number, bill_id=bill.bill_id) if link_url else ""
    values = {
        "number": bill.number,
        "total": f"{bill.total:f}",
        "currency": bill.currency,
        "due_date": bill.due_date,
        "period": bill.period,
        "link": link,
        "attached": attached,
    }
    return enqueue(conn, "bill", bill.bill_id, bill.consumer_id, values, now)


def enqueue_issued_bills(
    conn: Connection, now: datetime, *, link_url: str = "", attached: bool = False
) -> int:
    """Queue every issued bill that has no delivery yet (bills of the bill-run capability)."""
    bills = metadata.tables.get("bills")
    if bills is None:  # the bill-run capability is not installed
        return 0
    queued_already = exists().where(
        deliveries.c.kind == "bill",
        deliveries.c.subject_id == cast(bills.c.id, String),
    )
    rows = conn.execute(
        select(bills).where(bills.c.status == "issued", ~queued_already).order_by(bills.c.id)
    ).all()
    queued = 0
    for row in rows:
        last_day = row.period_end - timedelta(days=1)
        notice = BillNotice(
            bill_id=str(row.id),
            number=row.number,
            consumer_id=row.consumer_id,
            total=Decimal(str(row.total)),
            currency=row.currency,
            due_date=row.due_date.isoformat(),
            period=f"{row.period_start.isoformat()} to {last_day.isoformat()}",
        )
        queued += enqueue_bill(conn, notice, now, link_url=link_url, attached=attached)
    return queued


def enqueue_receipt(
    conn: Connection,
    receipt_id: str,
    consumer_id: str,
    *,
    amount: Decimal,
    currency: str,
    reference: str,
    paid_on: str,
    balance: Decimal | None,
    now: datetime,
) -> int:
    values = {
        "amount": f"{amount:f}",
        "currency": currency,
        "reference": reference,
        "paid_on": paid_on,
        "balance": None if balance is None else f"{balance:.2f}",
    }
    return enqueue(conn, "receipt", receipt_id, consumer_id, values, now)


def enqueue_warning(
    conn: Connection,
    event_id: str,
    consumer_id: str,
    *,
    level: Decimal,
    balance: Decimal,
    currency: str,
    now: datetime,
) -> int:
    values = {"level": f"{level:f}", "balance": f"{balance:.2f}", "currency": currency}
    return enqueue(conn, "warning", event_id, consumer_id, values, now)


# ---------------------------------------------------------------------------- sending


@dataclass(frozen=True, slots=True)
class SendCounts:
    sent: int = 0
    failed: int = 0
    skipped: int = 0  # no channel configured for it: stays queued


def deliver_due(
    engine: Engine,
    channels: Mapping[str, Channel],
    now: datetime,
    *,
    max_attempts: int,
    retry_seconds: int,
    attachments: AttachmentSource | None = None,
    limit: int = 1000,
) -> SendCounts:
    """Send every queued delivery, and every failed one whose retry time has come."""
    with engine.connect() as conn:
        due = conn.execute(
            select(deliveries)
            .where(
                deliveries.c.status.in_(("queued", "failed")),
                deliveries.c.next_attempt_at.is_not(None),
                deliveries.c.next_attempt_at <= now,
            )
            .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
            .limit(limit)
        ).all()
    sent = failed = skipped = 0
    for row in due:
        channel = channels.get(row.channel)
        if channel is None:
            skipped += 1
            continue
        try:
            with engine.begin() as conn:
                files = attachments(conn, row.kind, row.subject_id) if attachments else ()
        except Exception as exc:  # a document that cannot be made is this delivery's failure
            result = DeliveryResult(False, f"attachment: {type(exc).__name__}: {exc}")
        else:
            result = channel.send(Message(row.address, row.subject, row.body, tuple(files)))
        with engine.begin() as conn:
            _record(conn, row, result.ok, result.error, now, max_attempts, retry_seconds)
        if result.ok:
            sent += 1
        else:
            failed += 1
    return SendCounts(sent, failed, skipped)


def _record(
    conn: Connection,
    row: Row[Any],
    ok: bool,
    error: str | None,
    now: datetime,
    max_attempts: int,
    retry_seconds: int,
) -> None:
    attempts = row.attempts + 1
    if ok:
        values: dict[str, Any] = {
            "status": "sent",
            "attempts": attempts,
            "sent_at": now,
            "next_attempt_at": None,
        }
    else:
        values = {
            "status": "failed",
            "attempts": attempts,
            "last_error": error or "delivery failed",
            "next_attempt_at": next_attempt_at(
                attempts, now, base_seconds=retry_seconds, max_attempts=max_attempts
            ),
        }
    conn.execute(update(deliveries).where(deliveries.c.id == row.id).values(**values))


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
        .where(deliveries.c.status == "failed")
        .values(next_attempt_at=now, attempts=0)
    ).rowcount
