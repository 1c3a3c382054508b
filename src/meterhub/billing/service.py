"""Billing's API for the command line, the web app and other capabilities.

What lies behind it (the pure core, the jobs, payments, documents, the store's rows) may move;
callers outside billing import from here.
"""

from __future__ import annotations

from meterhub.billing.core.stored_bill import StoredBill
from meterhub.billing.jobs.delivery import CHANNELS_OF, Preference, set_preference
from meterhub.billing.payments.ledger import statement
from meterhub.billing.payments.record import (
    PaymentRefused,
    Recorded,
    record_counter_payment,
    record_notice,
    record_notice_once,
    record_topup,
)
from meterhub.billing.repository import add_adjustment, load_bill, load_tariffs, save_tariff
from meterhub.store.bill_runs import run_status
from meterhub.store.bills import bills_of_period
from meterhub.store.tariffs import assign_tariff

__all__ = [
    "CHANNELS_OF",
    "PaymentRefused",
    "Preference",
    "Recorded",
    "StoredBill",
    "add_adjustment",
    "assign_tariff",
    "bills_of_period",
    "load_bill",
    "load_tariffs",
    "record_counter_payment",
    "record_notice",
    "record_notice_once",
    "record_topup",
    "run_status",
    "save_tariff",
    "set_preference",
    "statement",
]
