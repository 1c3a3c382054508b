"""SQL for the bill-number counter: one row per utility and year, advanced in the transaction
that inserts the bills, so a rollback takes its numbers back (no gaps), and the row lock the
UPDATE takes serialises concurrent bill runs. No commits here."""

from __future__ import annotations

from sqlalchemy import Connection, insert, update

from meterhub.store.schema_billing import bill_numbers


def take(conn: Connection, utility: str, year: int, count: int) -> int:
    """Advance the counter by ``count``; the first of the ``count`` sequence numbers taken."""
    table = bill_numbers
    # UPDATE first: it locks the row (PostgreSQL) or the database (SQLite) until commit.
    advanced = conn.execute(
        update(table)
        .where(table.c.utility == utility, table.c.year == year)
        .values(next_number=table.c.next_number + count)
        .returning(table.c.next_number)
    ).scalar_one_or_none()
    if advanced is None:
        conn.execute(insert(table).values(utility=utility, year=year, next_number=1 + count))
        advanced = 1 + count
    return int(advanced) - count


def lock(conn: Connection, utility: str, year: int) -> None:
    """Take the counter's row lock (creating the row) without using a number."""
    table = bill_numbers
    changed = conn.execute(
        update(table)
        .where(table.c.utility == utility, table.c.year == year)
        .values(next_number=table.c.next_number)
    )
    if changed.rowcount == 0:
        conn.execute(insert(table).values(utility=utility, year=year, next_number=1))
