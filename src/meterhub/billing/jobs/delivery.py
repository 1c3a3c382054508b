"""Bill delivery: queue bills, receipts and prepaid warnings per consumer preferences, send them
through the configured channels, record every attempt, retry failures with backoff.

Queueing renders the text once (``notify.templates``) and stores it in ``deliveries``, one row
per (kind, subject, channel), so a repeated run never queues twice and a retry sends the same
words. Sending happens outside the queueing transaction: each attempt's outcome is committed on
its own, so a crash half-way loses no record of what went out.

Several senders may run at once (two cron jobs overlapping, a service and a manual run): a
sender first claims a few due rows with a lease (``claimed_until``, ``claim_token``) in a short
transaction of its own, sends them and clears the claim with the outcome. A claimed row is not
due for anyone else until its lease has run out, so no message goes out twice while its sender
lives; a sender that dies mid-send leaves a lease that expires, and the row is tried again
(at least once, never silently dropped). PostgreSQL claims with ``FOR UPDATE SKIP LOCKED`` so
concurrent senders take different rows instead of queueing on the same ones; SQLite has one
writer at a time, so the same conditional UPDATE is enough there.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Connection, Engine, Row

from meterhub.billing.core.receipts import balance_words
from meterhub.billing.documents.render import render_pdf
from meterhub.billing.repository import load_bill
from meterhub.config import Settings
from meterhub.notify.channels import Attachment, Channel, Message
from meterhub.notify.templates import render
from meterhub.store import bills as bill_store
from meterhub.store import deliveries as delivery_store

log = logging.getLogger(__name__)

Kind = Literal["bill", "receipt", "warning", "reminder"]
Preference = Literal["email", "sms", "both", "none"]
CHANNELS_OF: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "sms": ("sms",),
    "both": ("email", "sms"),
    "none": (),
}
MAX_BACKOFF = timedelta(days=1)
# How long a claimed row belongs to its sender: far longer than one send may take (apprise's
# SMTP and HTTP timeouts are well under a minute), with rows claimed a few at a time.
CLAIM_LEASE = timedelta(minutes=10)
CLAIM_BATCH = 10

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
    delivery_store.set_preference(
        conn, consumer_id, channels, email=email, phone=phone, updated_at=now
    )


def consumer_addresses(conn: Connection, consumer_id: str) -> tuple[str, dict[str, str]]:
    """The consumer's name and where their messages go, per their preferences."""
    row = delivery_store.recipient(conn, consumer_id)
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
        if delivery_store.is_queued(conn, kind, subject_id, channel):
            continue
        subject, body = render(
            template, channel, name=name, consumer_id=consumer_id, **dict(values)
        )
        delivery_store.queue(
            conn,
            kind=kind,
            subject_id=subject_id,
            consumer_id=consumer_id,
            channel=channel,
            address=address,
            subject=subject,
            body=body,
            now=now,
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
    """Queue every issued bill that has no delivery yet."""
    rows = delivery_store.unqueued_issued_bills(conn)
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
        "balance": None if balance is None else balance_words(balance, currency),
    }
    return enqueue(conn, "receipt", receipt_id, consumer_id, values, now)


def enqueue_reminder(
    conn: Connection,
    reminder_id: str,
    consumer_id: str,
    *,
    number: str,
    open_amount: Decimal,
    currency: str,
    due_date: str,
    step: str,
    fee: str = "",
    link_url: str = "",
    bill_id: str = "",
    now: datetime,
) -> int:
    """A payment reminder; ``reminder_id`` names the bill and the reminder step, so each step
    of each bill is queued once however often the daily job runs."""
    link = link_url.format(number=number, bill_id=bill_id) if link_url else ""
    values = {
        "number": number,
        "amount": f"{open_amount:.2f}",
        "currency": currency,
        "due_date": due_date,
        "step": step,
        "fee": fee,
        "link": link,
    }
    return enqueue(conn, "reminder", reminder_id, consumer_id, values, now)


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
    lease: timedelta = CLAIM_LEASE,
    batch: int = CLAIM_BATCH,
) -> SendCounts:
    """Send every queued delivery, and every failed one whose retry time has come, at most
    ``limit`` of them; rows other senders hold are left to them. Only rows on a configured
    channel are claimed: the others stay queued (counted as skipped)."""
    wanted = sorted(channels)
    with engine.connect() as conn:
        skipped = delivery_store.count_due_elsewhere(conn, wanted, now)
    sent = failed = 0
    started = time.monotonic()
    while sent + failed < limit:
        # The lease runs on from ``now`` by the time this run has taken, so a long run's late
        # claims are not already expired (``now`` itself stays the time recorded, for tests).
        claim_now = now + timedelta(seconds=time.monotonic() - started)
        token = uuid.uuid4().hex
        with engine.begin() as conn:
            found, rows = delivery_store.claim(
                conn, wanted, claim_now, token, min(batch, limit - sent - failed), claim_now + lease
            )
        if not found:
            break
        # found but none claimed: another sender took them first; look for the next ones.
        for row in rows:
            ok, error = _send(engine, channels[row.channel], row, attachments)
            with engine.begin() as conn:
                _record(conn, row, token, ok, error, now, max_attempts, retry_seconds)
            if ok:
                sent += 1
            else:
                failed += 1
    return SendCounts(sent, failed, skipped)


def _send(
    engine: Engine, channel: Channel, row: Row[Any], attachments: AttachmentSource | None
) -> tuple[bool, str | None]:
    try:
        with engine.begin() as conn:
            files = attachments(conn, row.kind, row.subject_id) if attachments else ()
    except Exception as exc:  # a document that cannot be made is this delivery's failure
        return False, f"attachment: {type(exc).__name__}: {exc}"
    result = channel.send(Message(row.address, row.subject, row.body, tuple(files)))
    return result.ok, result.error


def _record(
    conn: Connection,
    row: Row[Any],
    token: str,
    ok: bool,
    error: str | None,
    now: datetime,
    max_attempts: int,
    retry_seconds: int,
) -> None:
    attempts = row.attempts + 1
    values: dict[str, Any] = {"attempts": attempts}
    if ok:
        values |= {"status": "sent", "sent_at": now, "next_attempt_at": None}
    else:
        values |= {
            "status": "failed",
            "last_error": error or "delivery failed",
            "next_attempt_at": next_attempt_at(
                attempts, now, base_seconds=retry_seconds, max_attempts=max_attempts
            ),
        }
    if not delivery_store.record_outcome(conn, row.id, token, values):
        # The lease ran out mid-send and another sender took the row over.
        log.warning("delivery %s: lease lost before its outcome was recorded", row.id)


def list_deliveries(
    conn: Connection, *, failed_only: bool = False, limit: int = 500
) -> list[dict[str, Any]]:
    """Deliveries, newest first; ``failed_only``: those whose last attempt failed."""
    return delivery_store.list_deliveries(conn, failed_only=failed_only, limit=limit)


def retry_now(conn: Connection, now: datetime) -> int:
    """Make every failed delivery due now, including those that used up their attempts."""
    return delivery_store.retry_now(conn, now)


# ---------------------------------------------------------------------------- the daily send


def queue_and_send(
    engine: Engine,
    settings: Settings,
    channels: Mapping[str, Channel],
    now: datetime,
    *,
    retry: bool = False,
) -> dict[str, int]:
    """Queue issued bills not yet queued (with their PDF), then send everything due."""
    with engine.begin() as conn:
        if retry:
            retry_now(conn, now)
        queued = enqueue_issued_bills(conn, now, link_url=settings.bill_link_url, attached=True)
    counts = deliver_due(
        engine,
        channels,
        now,
        max_attempts=settings.delivery_max_attempts,
        retry_seconds=settings.delivery_retry_seconds,
        attachments=bill_pdf,
    )
    return {
        "queued": queued,
        "sent": counts.sent,
        "failed": counts.failed,
        "skipped": counts.skipped,
    }


def bill_pdf(conn: Connection, kind: str, subject_id: str) -> Sequence[Attachment]:
    """The issued bill's PDF (the bill-document renderer, from the stored bill: nothing is
    recomputed), attached to bill e-mails."""
    if kind != "bill":
        return ()
    number = bill_store.number_of(conn, int(subject_id))
    stored = None if number is None else load_bill(conn, number)
    if stored is None:
        return ()
    return (Attachment(f"bill-{stored.number}.pdf", render_pdf(stored)),)
