"""Billing's API for the command line, the web app and other capabilities.

What lies behind it (the pure core, the jobs, payments, documents, the store's rows) may move;
callers outside billing import from here. Functions that take a ``Connection`` work in the
caller's transaction and never commit; functions that take an ``Engine`` are a unit of work
each (one transaction, or one per consumer or chunk for the jobs, as their docstrings say).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from meterhub.billing.core.calculate import Bill, Supply
from meterhub.billing.core.determinants import Determinants
from meterhub.billing.core.ledger import Account
from meterhub.billing.core.stored_bill import StoredBill
from meterhub.billing.core.tariff import Tariff, TariffGap, TariffInvalid, load_tariff
from meterhub.billing.documents.content import bill_document
from meterhub.billing.documents.render import render_html, render_pdf
from meterhub.billing.jobs import prepaid
from meterhub.billing.jobs.daily import DailyReport, daily_pass, run_due_periods
from meterhub.billing.jobs.delivery import (
    CHANNELS_OF,
    Preference,
    list_deliveries,
    queue_and_send,
    set_preference,
)
from meterhub.billing.jobs.dunning import apply_payment_terms
from meterhub.billing.jobs.prepaid import PrepaidError
from meterhub.billing.jobs.prepaid_run import accrue_all
from meterhub.billing.jobs.runs import (
    FinalBillRefused,
    PeriodNotOver,
    RunResult,
    issue_final_bill,
    run_bills,
)
from meterhub.billing.payments.ledger import statement
from meterhub.billing.payments.record import (
    CounterMethod,
    PaymentRefused,
    Recorded,
    record_counter_payment,
    record_notice,
    record_notice_once,
    record_topup,
)
from meterhub.billing.quote import UsageError, quote, read_usage_csv
from meterhub.billing.repository import add_adjustment, load_bill, load_tariffs, save_tariff
from meterhub.store.bill_runs import run_status
from meterhub.store.bills import bills_of_period
from meterhub.store.tariffs import assign_tariff

__all__ = [
    "CHANNELS_OF",
    "Account",
    "Bill",
    "CounterMethod",
    "DailyReport",
    "Determinants",
    "FinalBillRefused",
    "PaymentRefused",
    "PeriodNotOver",
    "Preference",
    "PrepaidError",
    "Recorded",
    "RunResult",
    "StoredBill",
    "Supply",
    "Tariff",
    "TariffGap",
    "TariffInvalid",
    "UsageError",
    "account_statement",
    "accrue_all",
    "add_adjustment",
    "apply_payment_terms",
    "assign_tariff",
    "bill_document",
    "bills_of_period",
    "daily_pass",
    "deliveries",
    "issue_final_bill",
    "load_bill",
    "load_tariff",
    "load_tariffs",
    "open_prepaid_account",
    "pay_at_counter",
    "prepaid_status",
    "queue_and_send",
    "quote",
    "read_usage_csv",
    "record_counter_payment",
    "record_notice",
    "record_notice_once",
    "record_topup",
    "render_html",
    "render_pdf",
    "run_bills",
    "run_due_periods",
    "run_status",
    "save_tariff",
    "set_preference",
    "statement",
    "store_tariff",
    "stored_bill",
    "top_up",
]

_Result = TypeVar("_Result")


def _in_transaction(engine: Engine, work: Callable[[Connection], _Result]) -> _Result:
    with engine.begin() as conn:
        return work(conn)


# ----------------------------------------------------------------------------- tariffs, bills


def store_tariff(engine: Engine, tariff: Tariff, *, source_file: str, now: datetime) -> None:
    """Store (or replace) a validated tariff under its id."""
    _in_transaction(
        engine, lambda conn: save_tariff(conn, tariff, source_file=source_file, now=now)
    )


def stored_bill(engine: Engine, number: str) -> StoredBill | None:
    with engine.connect() as conn:
        return load_bill(conn, number)


# ----------------------------------------------------------------------------- payments


def pay_at_counter(
    engine: Engine,
    *,
    consumer_id: str,
    amount: Decimal,
    currency: str,
    method: CounterMethod,
    entered_by: str,
    received_at: datetime,
    reference: str | None,
) -> Recorded:
    """A counter payment, one transaction: recorded, allocated, posted, its receipt issued."""
    return _in_transaction(
        engine,
        lambda conn: record_counter_payment(
            conn,
            consumer_id=consumer_id,
            amount=amount,
            currency=currency,
            method=method,
            entered_by=entered_by,
            received_at=received_at,
            reference=reference,
        ),
    )


def account_statement(engine: Engine, consumer_id: str, as_of: date) -> Account:
    """The statement of account on ``as_of``; newly issued bills are posted to the ledger
    first, so this is a transaction that may write."""
    return _in_transaction(engine, lambda conn: statement(conn, consumer_id, as_of))


# ----------------------------------------------------------------------------- prepaid


def open_prepaid_account(
    engine: Engine, consumer_id: str, meter_id: str, tariff_id: str, now: datetime
) -> None:
    """Intervals of ``meter_id`` from ``now`` on are charged to the consumer's account.
    ``PrepaidError`` when the consumer, meter or tariff is unknown or the account exists."""
    try:
        _in_transaction(
            engine,
            lambda conn: prepaid.open_account(conn, consumer_id, meter_id, tariff_id, now),
        )
    except IntegrityError:
        raise PrepaidError("unknown consumer, meter or tariff, or the account exists") from None


def top_up(
    engine: Engine,
    *,
    consumer_id: str,
    amount: Decimal,
    method: CounterMethod,
    entered_by: str,
    received_at: datetime,
    reference: str | None,
) -> tuple[Recorded, Decimal]:
    """A prepaid top-up at the counter (``record_topup``) and the account's balance after it,
    in one transaction."""

    def work(conn: Connection) -> tuple[Recorded, Decimal]:
        recorded = record_topup(
            conn,
            consumer_id=consumer_id,
            amount=amount,
            method=method,
            entered_by=entered_by,
            received_at=received_at,
            reference=reference,
        )
        return recorded, prepaid.balance(conn, consumer_id)

    return _in_transaction(engine, work)


def prepaid_status(engine: Engine, consumer_id: str) -> tuple[prepaid.Account, Decimal]:
    """The prepaid account and its balance; ``PrepaidError`` without one."""
    with engine.connect() as conn:
        account = prepaid.get_account(conn, consumer_id)
        return account, prepaid.balance(conn, consumer_id)


# ----------------------------------------------------------------------------- delivery


def deliveries(engine: Engine, *, failed_only: bool, limit: int) -> list[dict[str, Any]]:
    """Deliveries, newest first; ``failed_only``: those whose last attempt failed."""
    with engine.connect() as conn:
        return list_deliveries(conn, failed_only=failed_only, limit=limit)
