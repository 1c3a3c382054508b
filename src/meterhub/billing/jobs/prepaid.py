"""Prepaid accounts: the balance is drawn down as interval costs accrue.

The pricing and the supply rules are pure (``billing.core.prepaid``); this module keeps the
accounts in the store (``open_account``, ``credit_topup``, ``balance``, ``accrue``).

Balance = top-ups - charges, derived, never stored. A charge row per (account, interval start)
makes accrual idempotent: an interval is charged once, however often the run repeats.

The consumer ledger mirrors the account: every top-up is a payment (``billing.payments``: a
ledger credit, a receipt), and each accrual debits the ledger with the usage not yet on it
(``mirror_on_ledger``, rounded to the cent on the running total). So the ledger balance is
minus the prepaid balance to within half a cent; the account, exact to six places, is what
warnings and disconnection are decided on.

Requests to the supply (low balance, disconnect, reconnect) are platform events of the meter
(``readings.events.platform_event``, keyed by the request's values), written once each.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from meterhub.billing.core.calculate import Supply
from meterhub.billing.core.ledger import Entry
from meterhub.billing.core.prepaid import (
    AMOUNT_QUANTUM,
    NEVER,
    ZERO,
    Charge,
    DisconnectPolicy,
    IntervalPricer,
    SupplyAction,
    crossed_levels,
    ledger_due,
    supply_action,
)
from meterhub.billing.core.tariff import Tariff
from meterhub.billing.payments.ledger import lock_ledger, post
from meterhub.readings.events import platform_event
from meterhub.readings.intervals import Interval
from meterhub.store import billable, events
from meterhub.store import ledger as ledger_store
from meterhub.store import prepaid as prepaid_store
from meterhub.store import tariffs as tariff_store


@dataclass(frozen=True, slots=True)
class LowBalanceWarning:
    level: Decimal
    balance: Decimal
    event_id: str  # the low_balance event: what a warning delivery refers to


@dataclass(frozen=True, slots=True)
class AccrualOutcome:
    consumer_id: str
    charged: int
    amount: Decimal
    balance: Decimal
    warnings: tuple[LowBalanceWarning, ...]
    action: SupplyAction | None


@dataclass(frozen=True, slots=True)
class Account:
    consumer_id: str
    meter_id: str
    tariff_id: str
    opened_at: datetime
    accrued_until: datetime | None
    supply_state: str


class PrepaidError(LookupError):
    """No such prepaid account, or an invalid top-up."""


def open_account(
    conn: Connection, consumer_id: str, meter_id: str, tariff_id: str, opened_at: datetime
) -> None:
    prepaid_store.insert_account(
        conn, consumer_id, meter_id, tariff_id, opened_at=opened_at, created_at=datetime.now(UTC)
    )


def get_account(conn: Connection, consumer_id: str) -> Account:
    row = prepaid_store.account(conn, consumer_id)
    if row is None:
        raise PrepaidError(f"no prepaid account for consumer {consumer_id}")
    return Account(*row)


def account_ids(conn: Connection) -> list[str]:
    return prepaid_store.account_ids(conn)


def balance(conn: Connection, consumer_id: str) -> Decimal:
    """Top-ups less charges, from the rows (never a stored balance)."""
    paid = prepaid_store.topped_up(conn, consumer_id)
    charged = prepaid_store.charged(conn, consumer_id)
    return (paid - charged).quantize(AMOUNT_QUANTUM)


def has_account(conn: Connection, consumer_id: str) -> bool:
    return prepaid_store.has_account(conn, consumer_id)


def credit_topup(
    conn: Connection,
    consumer_id: str,
    amount: Decimal,
    reference: str,
    now: datetime,
    *,
    payment_id: int,
) -> tuple[Decimal, SupplyAction | None]:
    """Credit the top-up that payment ``payment_id`` bought, once per reference; request
    reconnection if it makes the balance positive after a disconnection. Returns the new
    balance and the action taken.

    Called by ``billing.payments`` in the payment's own transaction (every payment of a
    consumer with a prepaid account tops it up), so the top-up, its ledger credit and its
    receipt are one unit of work: there is no top-up without a payment."""
    if amount <= 0:
        raise PrepaidError("a top-up is a positive amount")
    account = get_account(conn, consumer_id)
    prepaid_store.insert_topup(
        conn, consumer_id, amount, reference, payment_id=payment_id, received_at=now
    )
    after = balance(conn, consumer_id)
    action = supply_action(after, account.supply_state, now, NEVER)
    if action == "reconnect":
        _request(conn, account, "reconnect_requested", now, {"balance": f"{after:f}"})
    return after, action


def accrue(
    conn: Connection,
    consumer_id: str,
    tariff: Tariff,
    now: datetime,
    *,
    levels: Sequence[Decimal],
    policy: DisconnectPolicy,
) -> AccrualOutcome:
    """Charge the intervals not yet charged, warn at crossed levels, request disconnection at
    zero within the allowed hours. One unit of work: the caller's transaction."""
    # Top-ups (payments) and accruals of one consumer take turns: each sees the other's rows.
    lock_ledger(conn, consumer_id)
    account = get_account(conn, consumer_id)
    new = _uncharged_intervals(conn, account)
    before = balance(conn, consumer_id)
    charges = _charge(conn, account, tariff, new, now)
    # Always, not only when new intervals came: a run also posts what an earlier one missed.
    mirror_on_ledger(conn, consumer_id, now, get_account(conn, consumer_id).accrued_until)
    after = balance(conn, consumer_id)
    warnings = tuple(
        LowBalanceWarning(
            level, after, _request(conn, account, "low_balance", now, _amounts(level, after))
        )
        for level in crossed_levels(before, after, levels)
    )
    action = _act_on_supply(conn, account, after, now, policy)
    return AccrualOutcome(
        consumer_id,
        len(charges),
        sum((c.amount for c in charges), ZERO),
        after,
        warnings,
        action,
    )


def mirror_on_ledger(
    conn: Connection, consumer_id: str, now: datetime, accrued_until: datetime | None
) -> Decimal:
    """Debit the consumer's ledger with the prepaid usage not yet on it (``ledger_due``), so
    the ledger balance is minus the prepaid balance to within half a cent. Returns the amount
    posted (0.00: nothing new)."""
    due = ledger_due(
        prepaid_store.charged(conn, consumer_id),
        ledger_store.total_of_kind(conn, consumer_id, "prepaid"),
    )
    if due == 0:
        return Decimal("0.00")
    until = (accrued_until or now).astimezone(UTC)
    post(
        conn,
        consumer_id,
        Entry(
            "prepaid",
            due,
            f"prepaid:{until:%Y%m%dT%H%M%SZ}",
            now,
            now.astimezone(UTC).date(),
            f"prepaid usage to {until.isoformat()}",
        ),
    )
    return due


# ---------------------------------------------------------------------------- accrual steps


def _uncharged_intervals(conn: Connection, account: Account) -> list[Interval]:
    """The account meter's intervals not yet charged. Late intervals up to two days behind the
    watermark are still charged; the primary key keeps anything already charged from being
    charged again."""
    start_from = account.accrued_until or account.opened_at
    lookback = max(account.opened_at, start_from - timedelta(days=2))
    return prepaid_store.uncharged_intervals(conn, account.consumer_id, account.meter_id, lookback)


def _charge(
    conn: Connection, account: Account, tariff: Tariff, new: Sequence[Interval], now: datetime
) -> list[Charge]:
    """Price the new intervals in time order, store their charges and move the account's
    watermark past them."""
    if not new:
        return []
    pricer = IntervalPricer(
        tariff,
        _supply(conn, account),
        _charged_by_day(conn, account.consumer_id, new[0].start, tariff.zone),
    )
    charges = [pricer.price(interval) for interval in new]
    prepaid_store.insert_charges(
        conn,
        account.consumer_id,
        [prepaid_store.ChargeRow(c.interval_start, c.seconds, c.kwh, c.amount) for c in charges],
        charged_at=now,
    )
    last = max(c.interval_start + timedelta(seconds=c.seconds) for c in charges)
    if account.accrued_until is None or last > account.accrued_until:
        prepaid_store.set_accrued_until(conn, account.consumer_id, last)
    return charges


def _act_on_supply(
    conn: Connection,
    account: Account,
    after: Decimal,
    now: datetime,
    policy: DisconnectPolicy,
) -> SupplyAction | None:
    """Request disconnection (or reconnection) when the balance calls for it."""
    action = supply_action(after, account.supply_state, now, policy)
    if action is not None:
        kind = "disconnect_requested" if action == "disconnect" else "reconnect_requested"
        _request(conn, account, kind, now, {"balance": f"{after:f}"})
    return action


def _supply(conn: Connection, account: Account) -> Supply:
    """Sanctioned load from the meter; ampere rating from the consumer's latest tariff
    assignment (the bill-run capability's table), when there is one."""
    load = billable.sanctioned_load(conn, account.meter_id)
    amperes = tariff_store.latest_amperes(conn, account.consumer_id)
    return Supply(sanctioned_load_kw=None if load is None else Decimal(repr(load)), amperes=amperes)


def _charged_by_day(
    conn: Connection, consumer_id: str, first: datetime, zone: ZoneInfo
) -> dict[date, Decimal]:
    """kWh already charged on each local date of the month ``first`` falls in."""
    local = first.astimezone(zone)
    month_start = datetime(local.year, local.month, 1, tzinfo=zone).astimezone(UTC)
    by_day: dict[date, Decimal] = defaultdict(Decimal)
    for start, kwh in prepaid_store.charged_kwh_since(conn, consumer_id, month_start):
        by_day[start.astimezone(zone).date()] += kwh.quantize(AMOUNT_QUANTUM)
    return dict(by_day)


def _request(
    conn: Connection, account: Account, kind: str, now: datetime, payload: dict[str, str]
) -> str:
    """An event in the events table (the control capability will act on it when it exists;
    nothing else, such as meters.relay_state, is set here). The account remembers what was
    asked so that it is asked once."""
    event = platform_event(
        account.meter_id,
        now,
        kind,
        {"consumer_id": account.consumer_id, **payload},
        received_at=now,
        key=json.dumps(payload, sort_keys=True).encode(),
    )
    events.insert_events(conn, [event])
    state = {"disconnect_requested": "disconnect_requested", "reconnect_requested": "connected"}
    if kind in state:
        prepaid_store.set_supply_state(conn, account.consumer_id, state[kind])
    return event.id


def _amounts(level: Decimal, balance: Decimal) -> dict[str, str]:
    return {"level": f"{level:f}", "balance": f"{balance:f}"}
