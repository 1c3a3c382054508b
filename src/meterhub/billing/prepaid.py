"""Prepaid accounts: the balance is drawn down as interval costs accrue.

Pure core (``IntervalPricer``, ``crossed_levels``, ``may_disconnect``, ``supply_action``) and a
store adapter (``open_account``, ``top_up``, ``balance``, ``accrue``).

Pricing one interval (an approximation of the monthly bill, documented in
docs/delivery-and-prepaid.md): the tariff version, season, time-of-use window and day type of
the interval's start come from the tariff engine (a one-interval ``compute_determinants``).
Energy charges are priced as the interval happens: flat and TOU at their rate; telescopic
slabs at the marginal rate given what the account has already used this local month (or day,
for per-day slabs), so a month of prepaid charges equals the monthly slab bill; non-telescopic
slabs at the rate of the slab the month-to-date consumption has reached (the month is not
re-priced when a later interval moves it into a dearer slab). Taxes on energy are added in the
tariff's order. Fixed, demand and minimum charges and export credit are not drawn down here.

Balance = top-ups - charges, derived, never stored. A charge row per (account, interval start)
makes accrual idempotent: an interval is charged once, however often the run repeats.

The consumer ledger mirrors the account: every top-up is a payment (``billing.payments``: a
ledger credit, a receipt), and each accrual debits the ledger with the usage not yet on it
(``mirror_on_ledger``, rounded to the cent on the running total). So the ledger balance is
minus the prepaid balance to within half a cent; the account, exact to six places, is what
warnings and disconnection are decided on.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Insert, Table, and_, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from meterhub.billing.calculate import Connection as Supply
from meterhub.billing.calculate import condition_applies, tou_rate
from meterhub.billing.determinants import compute_determinants, holiday_set
from meterhub.billing.ledger import Entry
from meterhub.billing.tariff import (
    SlabCharge,
    Tariff,
    TariffGap,
    TariffVersion,
    TouCharge,
)
from meterhub.readings.intervals import Interval
from meterhub.readings.model import Quality
from meterhub.store import payments_store
from meterhub.store.schema import events, intervals, meters
from meterhub.store.schema_delivery import prepaid_accounts, prepaid_charges, prepaid_topups
from meterhub.store.schema_payments import ledger_entries
from meterhub.store.tables import metadata

ZERO = Decimal(0)
AMOUNT_QUANTUM = Decimal("0.000001")
CENT = Decimal("0.01")
SupplyState = Literal["connected", "disconnect_requested"]
SupplyAction = Literal["disconnect", "reconnect"]
EVENT_NAMESPACE = uuid.UUID("3f1c1c52-5d0e-4d59-9d61-1f8f2b7f6a01")


# ============================================================================ pure core


@dataclass(frozen=True, slots=True)
class Charge:
    interval_start: datetime
    seconds: int
    kwh: Decimal
    amount: Decimal


class IntervalPricer:
    """Prices one account's new intervals in time order on its tariff.

    ``charged_kwh_by_day``: kWh already charged on each local date of the month the first new
    interval falls in (so slabs continue where the month stands)."""

    def __init__(
        self,
        tariff: Tariff,
        supply: Supply | None = None,
        charged_kwh_by_day: Mapping[date, Decimal] | None = None,
    ) -> None:
        self.tariff = tariff
        self.supply = supply or Supply()
        self.by_day: dict[date, Decimal] = defaultdict(Decimal, charged_kwh_by_day or {})

    def price(self, interval: Interval) -> Charge:
        local_day = interval.start.astimezone(self.tariff.zone).date()
        one = compute_determinants([interval], self.tariff, local_day, local_day + timedelta(1))
        ((season, window),) = one.energy_by_bin or {("", ""): ZERO}
        kwh = one.import_kwh
        version = self.tariff.version_on(local_day)
        month_before = sum(
            (k for d, k in self.by_day.items() if (d.year, d.month) == _month(local_day)), ZERO
        )
        day_before = self.by_day[local_day]
        amounts: dict[str, Decimal] = {}
        for charge in version.energy:
            if not condition_applies(
                charge.when,
                amperes=self.supply.amperes,
                sanctioned_load_kw=self.supply.sanctioned_load_kw,
                name=charge.name,
            ):
                continue
            if isinstance(charge, TouCharge):
                amounts[charge.name] = kwh * _tou_rate(charge, season, window)
            elif charge.season is None or charge.season == season:
                before = day_before if charge.slab_basis == "day" else month_before
                amounts[charge.name] = _slab_amount(charge, before, kwh)
        if version.energy and not amounts and kwh > 0:
            raise TariffGap(f"{self.tariff.id}: no energy charge applies to {self.supply}")
        total = sum(amounts.values(), ZERO) + _energy_taxes(version, amounts)
        self.by_day[local_day] += kwh
        return Charge(interval.start, interval.seconds, kwh, total.quantize(AMOUNT_QUANTUM))


def _month(day: date) -> tuple[int, int]:
    return day.year, day.month


def _tou_rate(charge: TouCharge, season: str, window: str) -> Decimal:
    rate = tou_rate(charge, season, window)
    if rate is None:
        # A missing price is an error, never a zero.
        raise TariffGap(f"{charge.name}: no rate for season {season}, window {window}")
    return rate


def _slab_amount(charge: SlabCharge, used_before: Decimal, kwh: Decimal) -> Decimal:
    if charge.kind == "flat":
        assert charge.rate is not None  # checked when the tariff was loaded
        return kwh * charge.rate
    used_after = used_before + kwh
    if charge.kind == "non_telescopic":
        for slab in charge.slabs:
            if slab.up_to is None or used_after <= slab.up_to:
                return kwh * slab.rate
    amount, low = ZERO, ZERO
    for slab in charge.slabs:
        high = slab.up_to
        block_low = max(low, used_before)
        block_high = used_after if high is None else min(high, used_after)
        if block_high > block_low:
            amount += (block_high - block_low) * slab.rate
        if high is None:
            break
        low = high
    return amount


def _energy_taxes(version: TariffVersion, amounts: Mapping[str, Decimal]) -> Decimal:
    """Taxes whose base is energy (the group or an energy charge) or an earlier such tax."""
    lines = dict(amounts)
    energy = set(amounts)
    taxed = ZERO
    for tax in version.taxes:
        base = sum(
            (
                amount
                for name, amount in lines.items()
                if name in tax.applies_to or (name in energy and "energy" in tax.applies_to)
            ),
            ZERO,
        )
        amount = base * tax.percent / 100
        lines[tax.name] = amount
        taxed += amount
    return taxed


def crossed_levels(before: Decimal, after: Decimal, levels: Iterable[Decimal]) -> list[Decimal]:
    """The warning levels the balance fell below in going from ``before`` to ``after``, highest
    first. A level is crossed when the balance was at or above it and is now below it: going
    back above it (a top-up) re-arms it, so each crossing is warned once."""
    return sorted((level for level in levels if after < level <= before), reverse=True)


@dataclass(frozen=True, slots=True)
class DisconnectPolicy:
    """When supply may be cut: regulators forbid disconnection at night, at weekends and on
    public holidays, when the consumer cannot top up at an office."""

    zone: ZoneInfo
    start: time = time(9)
    until: time = time(16)
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    holidays: frozenset[date] = frozenset()


def may_disconnect(now: datetime, policy: DisconnectPolicy) -> bool:
    local = now.astimezone(policy.zone)
    return (
        local.weekday() in policy.weekdays
        and local.date() not in policy.holidays
        and policy.start <= local.time() < policy.until
    )


def supply_action(
    balance: Decimal, state: str, now: datetime, policy: DisconnectPolicy
) -> SupplyAction | None:
    """Disconnect at zero, only inside the allowed hours (outside them it waits for the next
    run inside them); reconnect as soon as the balance is positive again, at any hour."""
    if balance <= 0 and state == "connected" and may_disconnect(now, policy):
        return "disconnect"
    if balance > 0 and state == "disconnect_requested":
        return "reconnect"
    return None


# ============================================================================ store adapter


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
    conn.execute(
        insert(prepaid_accounts).values(
            consumer_id=consumer_id,
            meter_id=meter_id,
            tariff_id=tariff_id,
            opened_at=opened_at,
            supply_state="connected",
            created_at=datetime.now(UTC),
        )
    )


def get_account(conn: Connection, consumer_id: str) -> Account:
    row = conn.execute(
        select(
            prepaid_accounts.c.consumer_id,
            prepaid_accounts.c.meter_id,
            prepaid_accounts.c.tariff_id,
            prepaid_accounts.c.opened_at,
            prepaid_accounts.c.accrued_until,
            prepaid_accounts.c.supply_state,
        ).where(prepaid_accounts.c.consumer_id == consumer_id)
    ).first()
    if row is None:
        raise PrepaidError(f"no prepaid account for consumer {consumer_id}")
    return Account(*row)


def account_ids(conn: Connection) -> list[str]:
    query = select(prepaid_accounts.c.consumer_id).order_by(prepaid_accounts.c.consumer_id)
    return list(conn.execute(query).scalars())


def balance(conn: Connection, consumer_id: str) -> Decimal:
    """Top-ups less charges, from the rows (never a stored balance)."""
    paid = conn.execute(
        select(func.coalesce(func.sum(prepaid_topups.c.amount), 0)).where(
            prepaid_topups.c.consumer_id == consumer_id
        )
    ).scalar_one()
    charged = conn.execute(
        select(func.coalesce(func.sum(prepaid_charges.c.amount), 0)).where(
            prepaid_charges.c.consumer_id == consumer_id
        )
    ).scalar_one()
    return (Decimal(str(paid)) - Decimal(str(charged))).quantize(AMOUNT_QUANTUM)


def has_account(conn: Connection, consumer_id: str) -> bool:
    query = select(prepaid_accounts.c.consumer_id).where(
        prepaid_accounts.c.consumer_id == consumer_id
    )
    return conn.execute(query).first() is not None


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
    values = {
        "consumer_id": consumer_id,
        "amount": amount,
        "reference": reference,
        "payment_id": payment_id,
        "received_at": now,
    }
    conn.execute(_insert_ignore(conn, prepaid_topups, values, ["reference"]))
    after = balance(conn, consumer_id)
    action = supply_action(after, account.supply_state, now, _NEVER)
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
    payments_store.lock(conn, f"ledger:{consumer_id}")
    account = get_account(conn, consumer_id)
    start_from = account.accrued_until or account.opened_at
    # Late intervals up to two days behind the watermark are still charged; the primary key
    # keeps anything already charged from being charged again.
    lookback = max(account.opened_at, start_from - timedelta(days=2))
    already = select(prepaid_charges.c.interval_start).where(
        prepaid_charges.c.consumer_id == consumer_id,
        prepaid_charges.c.interval_start >= lookback,
    )
    rows = conn.execute(
        select(intervals)
        .where(
            intervals.c.meter_id == account.meter_id,
            intervals.c.start >= lookback,
            intervals.c.start.not_in(already),
        )
        .order_by(intervals.c.start)
    ).all()
    before = balance(conn, consumer_id)
    charges: list[Charge] = []
    if rows:
        new = [
            Interval(r.meter_id, r.start, r.seconds, r.import_kwh, r.export_kwh, Quality(r.quality))
            for r in rows
        ]
        pricer = IntervalPricer(
            tariff,
            _supply(conn, account),
            _charged_by_day(conn, consumer_id, new[0].start, tariff.zone),
        )
        charges = [pricer.price(interval) for interval in new]
        conn.execute(
            insert(prepaid_charges),
            [
                {
                    "consumer_id": consumer_id,
                    "interval_start": c.interval_start,
                    "seconds": c.seconds,
                    "kwh": c.kwh,
                    "amount": c.amount,
                    "charged_at": now,
                }
                for c in charges
            ],
        )
        last = max(c.interval_start + timedelta(seconds=c.seconds) for c in charges)
        if account.accrued_until is None or last > account.accrued_until:
            conn.execute(
                update(prepaid_accounts)
                .where(prepaid_accounts.c.consumer_id == consumer_id)
                .values(accrued_until=last)
            )
    # Always, not only when new intervals came: a run also posts what an earlier one missed.
    mirror_on_ledger(conn, consumer_id, now, get_account(conn, consumer_id).accrued_until)
    after = balance(conn, consumer_id)
    warnings = tuple(
        LowBalanceWarning(
            level, after, _request(conn, account, "low_balance", now, _amounts(level, after))
        )
        for level in crossed_levels(before, after, levels)
    )
    action = supply_action(after, account.supply_state, now, policy)
    if action is not None:
        kind = "disconnect_requested" if action == "disconnect" else "reconnect_requested"
        _request(conn, account, kind, now, {"balance": f"{after:f}"})
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
    """Debit the consumer's ledger with the prepaid usage not yet on it: all charges to date
    rounded half-up to the cent, less the ``prepaid`` entries already posted. Rounding the
    running total (never each run's part) keeps the ledger within half a cent of the account
    however many runs there are, so the ledger balance is minus the prepaid balance to within
    half a cent. Returns the amount posted (0.00: nothing new)."""
    charged = conn.execute(
        select(func.coalesce(func.sum(prepaid_charges.c.amount), 0)).where(
            prepaid_charges.c.consumer_id == consumer_id
        )
    ).scalar_one()
    posted = conn.execute(
        select(func.coalesce(func.sum(ledger_entries.c.amount), 0)).where(
            ledger_entries.c.consumer_id == consumer_id, ledger_entries.c.kind == "prepaid"
        )
    ).scalar_one()
    total = Decimal(str(charged)).quantize(CENT, rounding=ROUND_HALF_UP)
    due = total - Decimal(str(posted)).quantize(CENT)
    if due == 0:
        return Decimal("0.00")
    until = (accrued_until or now).astimezone(UTC)
    payments_store.post(
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


def policy_for(
    tariff: Tariff,
    now: datetime,
    *,
    start: time,
    until: time,
    weekdays: Iterable[int],
    holiday_country: str | None = None,
) -> DisconnectPolicy:
    """The disconnection window in the tariff's zone, with the tariff's holidays (and a
    country's, if the utility names one) around ``now``."""
    today = now.astimezone(tariff.zone).date()
    days = set(holiday_set(tariff, today - timedelta(1), today + timedelta(2)))
    if holiday_country:
        import holidays

        days |= set(holidays.country_holidays(holiday_country, years=today.year))
    return DisconnectPolicy(tariff.zone, start, until, frozenset(weekdays), frozenset(days))


# ---------------------------------------------------------------------------- helpers

# A top-up never disconnects: a policy without a disconnection window.
_NEVER = DisconnectPolicy(ZoneInfo("UTC"), time(0), time(0), frozenset())


def _supply(conn: Connection, account: Account) -> Supply:
    """Sanctioned load from the meter; ampere rating from the consumer's latest tariff
    assignment (the bill-run capability's table), when there is one."""
    load = conn.execute(
        select(meters.c.sanctioned_load_kw).where(meters.c.id == account.meter_id)
    ).scalar()
    amperes = None
    assignments = metadata.tables.get("tariff_assignments")
    if assignments is not None:
        amperes = conn.execute(
            select(assignments.c.amperes)
            .where(assignments.c.consumer_id == account.consumer_id)
            .order_by(assignments.c.from_date.desc())
            .limit(1)
        ).scalar()
    return Supply(sanctioned_load_kw=None if load is None else Decimal(repr(load)), amperes=amperes)


def _charged_by_day(
    conn: Connection, consumer_id: str, first: datetime, zone: ZoneInfo
) -> dict[date, Decimal]:
    local = first.astimezone(zone)
    month_start = datetime(local.year, local.month, 1, tzinfo=zone).astimezone(UTC)
    rows = conn.execute(
        select(prepaid_charges.c.interval_start, prepaid_charges.c.kwh).where(
            and_(
                prepaid_charges.c.consumer_id == consumer_id,
                prepaid_charges.c.interval_start >= month_start,
            )
        )
    ).all()
    by_day: dict[date, Decimal] = defaultdict(Decimal)
    for start, kwh in rows:
        by_day[start.astimezone(zone).date()] += Decimal(str(kwh)).quantize(AMOUNT_QUANTUM)
    return dict(by_day)


def _request(
    conn: Connection, account: Account, kind: str, now: datetime, payload: dict[str, str]
) -> str:
    """An event in the events table (the control capability will act on it when it exists;
    nothing else, such as meters.relay_state, is set here). The account remembers what was
    asked so that it is asked once."""
    event_id = str(
        uuid.uuid5(EVENT_NAMESPACE, f"{account.meter_id}|{now.isoformat()}|{kind}|{payload}")
    )
    values = {
        "meter_id": account.meter_id,
        "id": event_id,
        "ts": now,
        "type": kind,
        "source": "platform",
        "payload": {"consumer_id": account.consumer_id, **payload},
        "received_at": now,
    }
    conn.execute(_insert_ignore(conn, events, values, ["meter_id", "id"]))
    state = {"disconnect_requested": "disconnect_requested", "reconnect_requested": "connected"}
    if kind in state:
        conn.execute(
            update(prepaid_accounts)
            .where(prepaid_accounts.c.consumer_id == account.consumer_id)
            .values(supply_state=state[kind])
        )
    return event_id


def _amounts(level: Decimal, balance: Decimal) -> dict[str, str]:
    return {"level": f"{level:f}", "balance": f"{balance:f}"}


def _insert_ignore(
    conn: Connection, table: Table, values: Mapping[str, object], keys: list[str]
) -> Insert:
    """An insert that does nothing when the row is already there (same key)."""
    if conn.dialect.name == "postgresql":
        return pg_insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)
    return sqlite_insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)
