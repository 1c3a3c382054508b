"""Payment terms applied every day: late fees, prompt-payment rebates and reminders.

For every consumer with an issued bill (issued within ``LOOKBACK_DAYS``), in one transaction
per consumer under the ledger's lock: each bill's terms come from the tariff version the bill
was priced on (``bills.tariff_id``, ``bills.tariff_version``); the late fee earned so far is
posted less what is already posted (``payments.terms.assess_late_fee``), the rebate once if
earned (``payments.terms.grant_prompt_payment_rebate``), and the reminders due
(``core.late_fees.reminders_on``) are queued for delivery. Every part is idempotent, so the job
may run any number of times a day, and a concurrent run waits for the lock and then finds
nothing left to do.

Reminders are keyed by bill and step (``<bill id>:<kind>:<days from due>``), so each is queued
once. A day the job did not run is caught up for ``catch_up_days`` days: the latest reminder a
bill should have had in that window is sent, late rather than never; older ones are dropped
(a week-old "due in 3 days" helps nobody).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, Row

from meterhub.billing.core import ledger
from meterhub.billing.core.late_fees import (
    OpenBill,
    fee_words,
    latest_reminders,
    reminder_id,
    terms_of,
)
from meterhub.billing.core.tariff import Tariff
from meterhub.billing.jobs import delivery
from meterhub.billing.payments.ledger import entries, lock_ledger, post_issued_bills
from meterhub.billing.payments.terms import assess_late_fee, grant_prompt_payment_rebate
from meterhub.billing.repository import load_tariffs
from meterhub.store import bills as bill_store

log = logging.getLogger(__name__)

# Bills issued longer ago than this are left alone: an unpaid bill has long reached its last
# late-fee step (posted when the job ran then), and its rebate window has long closed.
LOOKBACK_DAYS = 400


@dataclass(slots=True)
class TermsOutcome:
    consumers: int = 0
    late_fees: int = 0  # ledger entries posted
    late_fee_total: Decimal = Decimal("0.00")
    rebates: int = 0
    rebate_total: Decimal = Decimal("0.00")
    reminders: int = 0  # deliveries queued (one per channel)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "consumers": self.consumers,
            "late_fees": self.late_fees,
            "late_fee_total": f"{self.late_fee_total:.2f}",
            "rebates": self.rebates,
            "rebate_total": f"{self.rebate_total:.2f}",
            "reminders_queued": self.reminders,
            "errors": list(self.errors),
        }


def apply_payment_terms(
    engine: Engine,
    today: date,
    now: datetime,
    *,
    link_url: str = "",
    days_before_due: Sequence[int] = (3,),
    catch_up_days: int = 2,
) -> TermsOutcome:
    """Late fees, rebates and reminders for every consumer with recent bills, as of ``today``
    (a local date in the utility's zone). One transaction per consumer: one consumer's
    problem is reported and the others are still done."""
    outcome = TermsOutcome()
    with engine.connect() as conn:
        tariffs = load_tariffs(conn)
        consumer_ids = bill_store.consumers_with_issued_bills(
            conn, ending_since=today - timedelta(days=LOOKBACK_DAYS)
        )
    for consumer_id in consumer_ids:
        try:
            with engine.begin() as conn:
                _consumer(
                    conn, consumer_id, tariffs, today, now, outcome,
                    link_url=link_url, days_before_due=days_before_due,
                    catch_up_days=catch_up_days,
                )  # fmt: skip
        except Exception as exc:  # one consumer's bad data must not stop everyone's fees
            log.exception("payment terms for consumer %s failed", consumer_id)
            outcome.errors.append(f"{consumer_id}: {type(exc).__name__}: {exc}")
        outcome.consumers += 1
    log.info(
        "payment terms on %s: %d consumers, %d late fees (%s), %d rebates (%s), "
        "%d reminders queued, %d errors",
        today, outcome.consumers, outcome.late_fees, outcome.late_fee_total, outcome.rebates,
        outcome.rebate_total, outcome.reminders, len(outcome.errors),
    )  # fmt: skip
    return outcome


def _consumer(
    conn: Connection,
    consumer_id: str,
    tariffs: Mapping[str, Tariff],
    today: date,
    now: datetime,
    outcome: TermsOutcome,
    *,
    link_url: str,
    days_before_due: Sequence[int],
    catch_up_days: int,
) -> None:
    # The lock, the posting of new bills and the entries once per consumer, not per bill and
    # rule: the entries are read again only after something was posted.
    lock_ledger(conn, consumer_id)
    post_issued_bills(conn, consumer_id)
    posted = entries(conn, consumer_id)
    rows = sorted(bill_store.issued_bills_of(conn, consumer_id), key=lambda r: (r.due_date, r.id))
    terms = {row.id: terms_of(tariffs, row.tariff_id, row.tariff_version) for row in rows}
    for row in rows:
        bill_terms = terms[row.id]
        if bill_terms is None:
            continue
        if bill_terms.late_fees and row.due_date < today:
            fee = assess_late_fee(
                conn, consumer_id, row.id, bill_terms, today, locked=(row, posted)
            )
            if fee > 0:
                outcome.late_fees += 1
                outcome.late_fee_total += fee
                posted = entries(conn, consumer_id)
        if bill_terms.prompt_payment_rebate_percent is not None:
            rebate = grant_prompt_payment_rebate(
                conn, consumer_id, row.id, bill_terms, today, locked=(row, posted)
            )
            if rebate > 0:
                outcome.rebates += 1
                outcome.rebate_total += rebate
                posted = entries(conn, consumer_id)
    account = ledger.account(posted, today)
    open_amount = {item.ref: item.open for item in account.open_items if item.kind == "bill"}
    by_ref: dict[str, Row[Any]] = {str(row.id): row for row in rows}
    open_bills = [
        OpenBill(consumer_id, ref, by_ref[ref].due_date, amount, terms[by_ref[ref].id])
        for ref, amount in open_amount.items()
        if ref in by_ref
    ]
    for reminder in latest_reminders(
        today, open_bills, days_before_due=days_before_due, catch_up_days=catch_up_days
    ):
        row = by_ref[reminder.bill_ref]
        outcome.reminders += delivery.enqueue_reminder(
            conn,
            reminder_id(reminder),
            consumer_id,
            number=row.number,
            open_amount=reminder.open_amount,
            currency=row.currency,
            due_date=row.due_date.isoformat(),
            step=reminder.kind,
            fee=fee_words(terms[row.id], reminder, row.currency),
            link_url=link_url,
            bill_id=str(row.id),
            now=now,
        )
