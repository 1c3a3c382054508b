"""SQL for issued bills: bills with their lines, corrections (adjustments and credit notes), and
the reads that bill runs, the ledger, delivery and the payment terms make of them.

Functions take a ``Connection`` and never commit: the caller's transaction is the unit of work
(a bill run commits once per chunk of consumers). Bills are inserted and read, never updated;
a correction is an adjustment row. Rows come back as plain values (mappings, named tuples).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row, and_, func, insert, select

from meterhub.store.schema_billing import bill_adjustments, bill_lines, bills


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


class BillRows(NamedTuple):
    bill: dict[str, Any]  # the ``bills`` row
    lines: list[dict[str, Any]]  # its ``bill_lines``, in order
    adjustments: list[dict[str, Any]]  # its ``bill_adjustments``, oldest first


def load_bill(conn: Connection, number: str) -> BillRows | None:
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
    return BillRows(dict(row), [dict(r) for r in lines], [dict(r) for r in adjustments])


def number_of(conn: Connection, bill_id: int) -> str | None:
    number = conn.execute(select(bills.c.number).where(bills.c.id == bill_id)).scalar()
    return None if number is None else str(number)


def id_of(conn: Connection, number: str) -> int | None:
    found = conn.execute(select(bills.c.id).where(bills.c.number == number)).scalar_one_or_none()
    return None if found is None else int(found)


def bill(conn: Connection, bill_id: int) -> Row[Any] | None:
    return conn.execute(select(bills).where(bills.c.id == bill_id)).first()


def numbers_of(conn: Connection, bill_ids: Sequence[int]) -> dict[int, str]:
    if not bill_ids:
        return {}
    rows = conn.execute(select(bills.c.id, bills.c.number).where(bills.c.id.in_(bill_ids)))
    return {int(row.id): row.number for row in rows}


def bills_of_period(conn: Connection, period_start: date) -> list[tuple[str, str]]:
    """(consumer id, bill number) of every bill of the period, by number."""
    rows = conn.execute(
        select(bills.c.consumer_id, bills.c.number)
        .where(bills.c.period_start == period_start)
        .order_by(bills.c.number)
    ).all()
    return [(row.consumer_id, row.number) for row in rows]


def billed_consumers(conn: Connection, consumer_ids: Iterable[str], period_start: date) -> set[str]:
    rows = conn.execute(
        select(bills.c.consumer_id).where(
            bills.c.consumer_id.in_(list(consumer_ids)), bills.c.period_start == period_start
        )
    )
    return {row.consumer_id for row in rows}


def count_of_period(conn: Connection, period_start: date) -> int:
    query = select(func.count()).select_from(bills).where(bills.c.period_start == period_start)
    return int(conn.execute(query).scalar_one())


def line_amounts(conn: Connection, bill_id: int) -> list[tuple[str, str, Decimal]]:
    """(code, kind, amount) of each of a bill's lines."""
    rows = conn.execute(
        select(bill_lines.c.code, bill_lines.c.kind, bill_lines.c.amount).where(
            bill_lines.c.bill_id == bill_id
        )
    )
    return [(r.code, r.kind, Decimal(r.amount)) for r in rows]


def issued_bills_of(conn: Connection, consumer_id: str) -> list[Row[Any]]:
    """The consumer's issued bills (``bills`` rows), in the order they were issued."""
    return list(
        conn.execute(
            select(bills)
            .where(and_(bills.c.consumer_id == consumer_id, bills.c.status == "issued"))
            .order_by(bills.c.id)
        ).all()
    )


def consumers_with_issued_bills(conn: Connection, *, ending_since: date) -> list[str]:
    """Consumers with an issued bill whose period ended on or after ``ending_since``, by id."""
    return list(
        conn.execute(
            select(bills.c.consumer_id)
            .where(bills.c.status == "issued", bills.c.period_end >= ending_since)
            .distinct()
            .order_by(bills.c.consumer_id)
        ).scalars()
    )


class AdjustmentRow(NamedTuple):
    id: int
    bill_number: str
    kind: str
    amount: Decimal
    reason: str
    created_at: datetime


def adjustments_of_consumer(conn: Connection, consumer_id: str) -> list[AdjustmentRow]:
    """Every adjustment and credit note on the consumer's bills."""
    a = bill_adjustments
    rows = conn.execute(
        select(a.c.id, bills.c.number, a.c.kind, a.c.amount, a.c.reason, a.c.created_at)
        .join(bills, bills.c.id == a.c.bill_id)
        .where(bills.c.consumer_id == consumer_id)
    )
    return [AdjustmentRow(int(r[0]), r[1], r[2], Decimal(r[3]), r[4], r[5]) for r in rows]


def insert_adjustment(
    conn: Connection,
    bill_id: int,
    kind: str,
    amount: Decimal,
    reason: str,
    *,
    created_by: str | None,
    created_at: datetime,
) -> int:
    result = conn.execute(
        insert(bill_adjustments)
        .values(
            bill_id=bill_id,
            kind=kind,
            amount=amount,
            reason=reason,
            created_at=created_at,
            created_by=created_by,
        )
        .returning(bill_adjustments.c.id)
    )
    return int(result.scalar_one())
