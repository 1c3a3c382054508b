"""SQL for billing: tariffs and assignments, who is billed, bills and their lines, adjustments.

Functions take a ``Connection`` and never commit: the caller's transaction is the unit of work
(a bill run commits once per chunk of consumers). Bills are inserted and read, never updated;
a correction is an adjustment row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update

from meterhub.billing.tariff import Tariff, parse_tariff
from meterhub.store import meters as meter_store
from meterhub.store import schema
from meterhub.store.schema_billing import (
    bill_adjustments,
    bill_lines,
    bill_runs,
    bills,
    tariff_assignments,
    tariffs,
)
from meterhub.store.schema_delivery import prepaid_accounts

ADJUSTMENT_KINDS = ("adjustment", "credit_note")


# ----------------------------------------------------------------------------- tariffs


def save_tariff(
    conn: Connection, tariff: Tariff, *, source_file: str | None = None, now: datetime | None = None
) -> None:
    """Store (or replace) a validated tariff document under its id."""
    document = tariff.model_dump(mode="json", by_alias=True, exclude_none=True)
    values = {
        "name": tariff.name,
        "category": tariff.category,
        "currency": tariff.currency,
        "document": document,
        "source_file": source_file,
        "loaded_at": now or datetime.now(UTC),
    }
    changed = conn.execute(update(tariffs).where(tariffs.c.id == tariff.id).values(**values))
    if changed.rowcount == 0:
        conn.execute(insert(tariffs).values(id=tariff.id, **values))


def load_tariffs(conn: Connection) -> dict[str, Tariff]:
    """Every stored tariff, validated again (a stored document is still only data)."""
    rows = conn.execute(select(tariffs.c.id, tariffs.c.document)).all()
    return {row.id: parse_tariff(row.document) for row in rows}


def tariff_categories(conn: Connection) -> dict[str, str]:
    """Category -> tariff id, for consumers without an explicit assignment."""
    rows = conn.execute(select(tariffs.c.category, tariffs.c.id).order_by(tariffs.c.id)).all()
    return {row.category: row.id for row in rows if row.category}


def assign_tariff(
    conn: Connection,
    consumer_id: str,
    tariff_id: str,
    from_date: date,
    *,
    category: str | None = None,
    amperes: int | None = None,
) -> None:
    conn.execute(
        insert(tariff_assignments).values(
            consumer_id=consumer_id,
            tariff_id=tariff_id,
            from_date=from_date,
            category=category,
            amperes=amperes,
        )
    )


@dataclass(frozen=True, slots=True)
class Assignment:
    tariff_id: str
    amperes: int | None


def assignments_on(
    conn: Connection, consumer_ids: Sequence[str], day: date
) -> dict[str, Assignment]:
    """The assignment in force on ``day`` for each consumer that has one."""
    t = tariff_assignments
    rows = conn.execute(
        select(t.c.consumer_id, t.c.from_date, t.c.tariff_id, t.c.amperes)
        .where(t.c.consumer_id.in_(consumer_ids), t.c.from_date <= day)
        .order_by(t.c.consumer_id, t.c.from_date)
    ).all()
    # Ordered by date: the last row per consumer is the one in force.
    return {row.consumer_id: Assignment(row.tariff_id, row.amperes) for row in rows}


# ----------------------------------------------------------------------------- who is billed


@dataclass(frozen=True, slots=True)
class BillableMeter:
    consumer_id: str
    consumer_name: str
    address: str | None
    email: str | None
    phone: str | None
    tariff_category: str | None
    meter_id: str
    sanctioned_load_kw: float | None


def prepaid_openings(conn: Connection, consumer_ids: Sequence[str]) -> dict[str, datetime]:
    """When each of these consumers went prepaid: postpaid bills stop at that instant."""
    t = prepaid_accounts
    rows = conn.execute(
        select(t.c.consumer_id, t.c.opened_at).where(t.c.consumer_id.in_(list(consumer_ids)))
    )
    return {row.consumer_id: row.opened_at for row in rows}


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
    return [
        BillableMeter(
            row.id,
            row.name,
            row.address,
            row.email,
            row.phone,
            row.tariff_category,
            row.meter_id,
            row.sanctioned_load_kw,
        )
        for row in rows
    ]


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


def billed_consumers(conn: Connection, consumer_ids: Iterable[str], period_start: date) -> set[str]:
    rows = conn.execute(
        select(bills.c.consumer_id).where(
            bills.c.consumer_id.in_(list(consumer_ids)), bills.c.period_start == period_start
        )
    )
    return {row.consumer_id for row in rows}


def energy_between(
    conn: Connection, meter_ids: Sequence[str], start: datetime, end: datetime
) -> dict[str, tuple[float, int]]:
    """(kWh imported, interval count) per meter over ``[start, end)``, for comparisons."""
    i = schema.intervals
    rows = conn.execute(
        select(i.c.meter_id, func.sum(i.c.import_kwh), func.count())
        .where(i.c.meter_id.in_(meter_ids), i.c.start >= start, i.c.start < end)
        .group_by(i.c.meter_id)
    ).all()
    return {row[0]: (float(row[1] or 0.0), int(row[2])) for row in rows}


# ----------------------------------------------------------------------------- bills


@dataclass(frozen=True, slots=True)
class NewBill:
    """A bill ready to insert: everything but its number."""

    values: Mapping[str, Any]  # columns of ``bills`` except id and number
    lines: Sequence[Mapping[str, Any]]  # columns of ``bill_lines`` except bill_id and line_no


def insert_bills(conn: Connection, numbered: Sequence[tuple[str, NewBill]]) -> list[int]:
    """Insert bills with their numbers and lines; the ids, in order."""
    if not numbered:
        return []
    rows = [{**bill.values, "number": number} for number, bill in numbered]
    for number, bill in numbered:
        total = bill.values["total"]
        if total != total.quantize(Decimal("0.01")):
            raise ValueError(f"{number}: total {total} has more than two decimals")
    result = conn.execute(insert(bills).returning(bills.c.id, sort_by_parameter_order=True), rows)
    ids = [int(row[0]) for row in result]
    line_rows = [
        {**line, "bill_id": bill_id, "line_no": line_no}
        for bill_id, (_, bill) in zip(ids, numbered, strict=True)
        for line_no, line in enumerate(bill.lines, start=1)
    ]
    if line_rows:
        conn.execute(insert(bill_lines), line_rows)
    return ids


@dataclass(frozen=True, slots=True)
class StoredBill:
    bill: Mapping[str, Any]  # the ``bills`` row
    lines: list[Mapping[str, Any]]
    adjustments: list[Mapping[str, Any]]

    @property
    def number(self) -> str:
        return str(self.bill["number"])

    @property
    def balance(self) -> Decimal:
        """The bill's total with its adjustments and credit notes (the bill itself unchanged)."""
        total: Decimal = self.bill["total"]
        return total + sum((row["amount"] for row in self.adjustments), Decimal(0))


def load_bill(conn: Connection, number: str) -> StoredBill | None:
    row = conn.execute(select(bills).where(bills.c.number == number)).mappings().first()
    if row is None:
        return None
    lines = conn.execute(
        select(bill_lines).where(bill_lines.c.bill_id == row["id"]).order_by(bill_lines.c.line_no)
    ).mappings()
    adjustments = conn.execute(
        select(bill_adjustments)
        .where(bill_adjustments.c.bill_id == row["id"])
        .order_by(bill_adjustments.c.id)
    ).mappings()
    return StoredBill(dict(row), [dict(r) for r in lines], [dict(r) for r in adjustments])


def bills_of_period(conn: Connection, period_start: date) -> list[tuple[str, str]]:
    """(consumer id, bill number) of every bill of the period, by number."""
    rows = conn.execute(
        select(bills.c.consumer_id, bills.c.number)
        .where(bills.c.period_start == period_start)
        .order_by(bills.c.number)
    ).all()
    return [(row.consumer_id, row.number) for row in rows]


def add_adjustment(
    conn: Connection,
    number: str,
    kind: str,
    amount: Decimal,
    reason: str,
    *,
    created_by: str | None = None,
    now: datetime | None = None,
) -> int:
    """Correct an issued bill without touching it: an adjustment or a credit note, with a reason.

    A credit note is in the consumer's favour, so its amount must be negative."""
    if kind not in ADJUSTMENT_KINDS:
        raise ValueError(f"kind must be one of {ADJUSTMENT_KINDS}, not {kind!r}")
    if not reason.strip():
        raise ValueError("a correction needs a reason")
    if amount != amount.quantize(Decimal("0.01")) or amount == 0:
        raise ValueError(f"amount {amount} must be non-zero with at most two decimals")
    if kind == "credit_note" and amount > 0:
        raise ValueError("a credit note reduces what is owed: its amount is negative")
    bill_id = conn.execute(select(bills.c.id).where(bills.c.number == number)).scalar_one_or_none()
    if bill_id is None:
        raise LookupError(f"no bill {number}")
    result = conn.execute(
        insert(bill_adjustments)
        .values(
            bill_id=bill_id,
            kind=kind,
            amount=amount,
            reason=reason,
            created_at=now or datetime.now(UTC),
            created_by=created_by,
        )
        .returning(bill_adjustments.c.id)
    )
    return int(result.scalar_one())


# ----------------------------------------------------------------------------- bill runs


def start_run(conn: Connection, period: str, start: date, end: date, now: datetime) -> None:
    values = {
        "period_start": start,
        "period_end": end,
        "status": "running",
        "started_at": now,
        "finished_at": None,
        "skipped": 0,
        "failed": 0,
        "errors": None,
    }
    changed = conn.execute(update(bill_runs).where(bill_runs.c.period == period).values(**values))
    if changed.rowcount == 0:
        conn.execute(insert(bill_runs).values(period=period, **values))


def record_progress(conn: Connection, period: str, *, issued: int) -> None:
    conn.execute(
        update(bill_runs)
        .where(bill_runs.c.period == period)
        .values(issued=bill_runs.c.issued + issued)
    )


def finish_run(
    conn: Connection,
    period: str,
    *,
    status: str,
    consumers: int,
    skipped: int,
    errors: Sequence[Mapping[str, str]],
    now: datetime,
) -> None:
    start = conn.execute(
        select(bill_runs.c.period_start).where(bill_runs.c.period == period)
    ).scalar_one()
    issued = conn.execute(
        select(func.count()).select_from(bills).where(bills.c.period_start == start)
    ).scalar_one()
    conn.execute(
        update(bill_runs)
        .where(bill_runs.c.period == period)
        .values(
            status=status,
            finished_at=now,
            consumers=consumers,
            issued=issued,
            skipped=skipped,
            failed=len(errors),
            errors=list(errors),
        )
    )


def run_status(conn: Connection, period: str) -> dict[str, Any] | None:
    row = conn.execute(select(bill_runs).where(bill_runs.c.period == period)).mappings().first()
    return None if row is None else dict(row)
