"""Monthly range partitions for the time-series tables on PostgreSQL.

Partitions are created ahead of the data they hold (the writer asks for the months in each batch);
a DEFAULT partition catches anything else so that no reading is ever refused for lack of one.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import Connection, text

# table name -> partition key column
PARTITIONED_TABLES: dict[str, str] = {"readings": "ts", "intervals": "start"}


PARTITION_NAME = re.compile(r"^(readings|intervals)_(default|y\d{4}m\d{2})$")


def is_partition(table_name: str | None) -> bool:
    """Partitions are created by the writer, not described in the metadata: schema comparisons
    (autogenerate, the migration test) must not take them for tables to drop."""
    return table_name is not None and PARTITION_NAME.match(table_name) is not None


def month_start(ts: datetime) -> datetime:
    ts = ts.astimezone(UTC)
    return datetime(ts.year, ts.month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def months_between(low: datetime, high: datetime) -> set[datetime]:
    """First instants (UTC) of every month from ``low``'s to ``high``'s, both included."""
    months = set()
    start = month_start(low)
    while start <= high:
        months.add(start)
        start = next_month(start)
    return months


def partition_name(table: str, start: datetime) -> str:
    return f"{table}_y{start.year:04d}m{start.month:02d}"


def ensure_month_partitions(connection: Connection, table: str, months: set[datetime]) -> None:
    """Create the monthly partitions of ``table`` for ``months`` (first instants, UTC) if missing.

    Rows already sitting in the DEFAULT partition for such a month are moved into the new one,
    since PostgreSQL refuses to attach a range that the default partition holds rows for.
    """
    for start in sorted(months):
        name = partition_name(table, start)
        exists = connection.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar()
        if exists:
            continue
        end = next_month(start)
        key = PARTITIONED_TABLES[table]
        bounds = {"a": start, "b": end}
        moved = f'"{table}_default"'
        # Serialise concurrent workers creating the same partition, and keep rows out of the
        # default partition while its rows for the month move. A lock on a relation, not an
        # advisory lock: taking it makes this backend read the catalog changes other
        # transactions committed meanwhile, so the check below sees a partition another worker
        # created while we waited (after an advisory lock it did not: two workers crossing
        # into a new month both created it, and one batch failed with DuplicateTable).
        connection.execute(text(f"LOCK TABLE {moved} IN SHARE ROW EXCLUSIVE MODE"))
        if connection.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar():
            continue
        connection.execute(text(f'CREATE TABLE "{name}" (LIKE "{table}" INCLUDING ALL)'))
        connection.execute(
            text(
                f'INSERT INTO "{name}" SELECT * FROM {moved} WHERE "{key}" >= :a AND "{key}" < :b'
            ),
            bounds,
        )
        connection.execute(
            text(f'DELETE FROM {moved} WHERE "{key}" >= :a AND "{key}" < :b'), bounds
        )
        connection.execute(
            text(
                f'ALTER TABLE "{table}" ATTACH PARTITION "{name}" '
                f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
            )
        )
