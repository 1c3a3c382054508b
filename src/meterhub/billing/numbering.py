"""Bill numbers: sequential and gap-free per utility and year, e.g. ``MH-2026-000123``.

Numbers come from the ``bill_numbers`` counter, advanced in the same transaction that inserts
the bills: a transaction that rolls back takes its numbers back with it, so there are no gaps,
and the row lock the UPDATE takes serialises concurrent bill runs.
"""

from __future__ import annotations

from sqlalchemy import Connection, insert, select, update

from meterhub.store.schema_billing import bill_numbers

DIGITS = 6


def format_number(utility: str, year: int, sequence: int) -> str:
    return f"{utility}-{year}-{sequence:0{DIGITS}d}"


def allocate_numbers(conn: Connection, utility: str, year: int, count: int) -> list[str]:
    """``count`` consecutive numbers; the caller's transaction must insert the bills too."""
    if count <= 0:
        return []
    table = bill_numbers
    where = (table.c.utility == utility, table.c.year == year)
    # UPDATE first: it locks the row (PostgreSQL) or the database (SQLite) until commit.
    advanced = conn.execute(
        update(table)
        .where(*where)
        .values(next_number=table.c.next_number + count)
        .returning(table.c.next_number)
    ).scalar_one_or_none()
    if advanced is None:
        conn.execute(insert(table).values(utility=utility, year=year, next_number=1 + count))
        advanced = 1 + count
    first = int(advanced) - count
    return [format_number(utility, year, first + offset) for offset in range(count)]


def lock_counter(conn: Connection, utility: str, year: int) -> None:
    """Take the counter's row lock (creating the row) without using a number."""
    table = bill_numbers
    changed = conn.execute(
        update(table)
        .where(table.c.utility == utility, table.c.year == year)
        .values(next_number=table.c.next_number)
    )
    if changed.rowcount == 0:
        conn.execute(insert(table).values(utility=utility, year=year, next_number=1))


def next_number(conn: Connection, utility: str, year: int) -> int:
    """The sequence the next bill will get (1 if none was issued that year)."""
    found = conn.execute(
        select(bill_numbers.c.next_number).where(
            bill_numbers.c.utility == utility, bill_numbers.c.year == year
        )
    ).scalar_one_or_none()
    return 1 if found is None else int(found)
