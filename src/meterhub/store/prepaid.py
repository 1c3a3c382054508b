"""SQL for prepaid accounts: the accounts, their top-ups and their interval charges.

Balances are never stored: top-ups and charges are summed when asked. A charge row per
(account, interval start) and a top-up row per reference make both idempotent. No commits
here: the caller's transaction is the unit of work.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import Connection, func, insert, select, update

from meterhub.readings.intervals import Interval
from meterhub.readings.model import Quality
from meterhub.store.dialects import insert_ignore
from meterhub.store.schema import intervals
from meterhub.store.schema_delivery import prepaid_accounts, prepaid_charges, prepaid_topups


class AccountRow(NamedTuple):
    consumer_id: str
    meter_id: str
    tariff_id: str
    opened_at: datetime
    accrued_until: datetime | None
    supply_state: str


class ChargeRow(NamedTuple):
    interval_start: datetime
    seconds: int
    kwh: Decimal
    amount: Decimal


def insert_account(
    conn: Connection,
    consumer_id: str,
    meter_id: str,
    tariff_id: str,
    *,
    opened_at: datetime,
    created_at: datetime,
) -> None:
    conn.execute(
        insert(prepaid_accounts).values(
            consumer_id=consumer_id,
            meter_id=meter_id,
            tariff_id=tariff_id,
            opened_at=opened_at,
            supply_state="connected",
            created_at=created_at,
        )
    )


def account(conn: Connection, consumer_id: str) -> AccountRow | None:
    t = prepaid_accounts
    row = conn.execute(
        select(
            t.c.consumer_id,
            t.c.meter_id,
            t.c.tariff_id,
            t.c.opened_at,
            t.c.accrued_until,
            t.c.supply_state,
        ).where(t.c.consumer_id == consumer_id)
    ).first()
    return None if row is None else AccountRow(*row)


def account_ids(conn: Connection) -> list[str]:
    query = select(prepaid_accounts.c.consumer_id).order_by(prepaid_accounts.c.consumer_id)
    return list(conn.execute(query).scalars())


def has_account(conn: Connection, consumer_id: str) -> bool:
    query = select(prepaid_accounts.c.consumer_id).where(
        prepaid_accounts.c.consumer_id == consumer_id
    )
    return conn.execute(query).first() is not None


def openings(conn: Connection, consumer_ids: Sequence[str]) -> dict[str, datetime]:
    """When each of these consumers went prepaid (those with an account)."""
    t = prepaid_accounts
    rows = conn.execute(
        select(t.c.consumer_id, t.c.opened_at).where(t.c.consumer_id.in_(list(consumer_ids)))
    )
    return {row.consumer_id: row.opened_at for row in rows}


def set_accrued_until(conn: Connection, consumer_id: str, until: datetime) -> None:
    conn.execute(
        update(prepaid_accounts)
        .where(prepaid_accounts.c.consumer_id == consumer_id)
        .values(accrued_until=until)
    )


def set_supply_state(conn: Connection, consumer_id: str, state: str) -> None:
    conn.execute(
        update(prepaid_accounts)
        .where(prepaid_accounts.c.consumer_id == consumer_id)
        .values(supply_state=state)
    )


# ----------------------------------------------------------------------------- money


def topped_up(conn: Connection, consumer_id: str) -> Decimal:
    """The sum of the account's top-ups (0 without any)."""
    total = conn.execute(
        select(func.coalesce(func.sum(prepaid_topups.c.amount), 0)).where(
            prepaid_topups.c.consumer_id == consumer_id
        )
    ).scalar_one()
    return Decimal(str(total))


def charged(conn: Connection, consumer_id: str) -> Decimal:
    """The sum of the account's charges (0 without any)."""
    total = conn.execute(
        select(func.coalesce(func.sum(prepaid_charges.c.amount), 0)).where(
            prepaid_charges.c.consumer_id == consumer_id
        )
    ).scalar_one()
    return Decimal(str(total))


def insert_topup(
    conn: Connection,
    consumer_id: str,
    amount: Decimal,
    reference: str,
    *,
    payment_id: int,
    received_at: datetime,
) -> None:
    """The top-up ``reference`` paid for; nothing if that reference is already credited."""
    values = {
        "consumer_id": consumer_id,
        "amount": amount,
        "reference": reference,
        "payment_id": payment_id,
        "received_at": received_at,
    }
    conn.execute(insert_ignore(conn, prepaid_topups, values, ["reference"]))


# ----------------------------------------------------------------------------- charges


def uncharged_intervals(
    conn: Connection, consumer_id: str, meter_id: str, since: datetime
) -> list[Interval]:
    """The meter's intervals from ``since`` on that the account has no charge for, in time
    order."""
    already = select(prepaid_charges.c.interval_start).where(
        prepaid_charges.c.consumer_id == consumer_id,
        prepaid_charges.c.interval_start >= since,
    )
    rows = conn.execute(
        select(intervals)
        .where(
            intervals.c.meter_id == meter_id,
            intervals.c.start >= since,
            intervals.c.start.not_in(already),
        )
        .order_by(intervals.c.start)
    ).all()
    return [
        Interval(r.meter_id, r.start, r.seconds, r.import_kwh, r.export_kwh, Quality(r.quality))
        for r in rows
    ]


def insert_charges(
    conn: Connection, consumer_id: str, charges: Sequence[ChargeRow], *, charged_at: datetime
) -> None:
    conn.execute(
        insert(prepaid_charges),
        [
            {
                "consumer_id": consumer_id,
                "interval_start": c.interval_start,
                "seconds": c.seconds,
                "kwh": c.kwh,
                "amount": c.amount,
                "charged_at": charged_at,
            }
            for c in charges
        ],
    )


def charged_kwh_since(
    conn: Connection, consumer_id: str, since: datetime
) -> list[tuple[datetime, Decimal]]:
    """(interval start, kWh) of every charge from ``since`` on."""
    rows = conn.execute(
        select(prepaid_charges.c.interval_start, prepaid_charges.c.kwh).where(
            prepaid_charges.c.consumer_id == consumer_id,
            prepaid_charges.c.interval_start >= since,
        )
    ).all()
    return [(start, Decimal(str(kwh))) for start, kwh in rows]
