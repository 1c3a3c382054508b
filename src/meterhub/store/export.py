"""Streaming exports of readings, intervals, events and dead letters (CSV or Parquet)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, BinaryIO, Literal

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine, Table, TypeDecorator, select

from meterhub.store import schema

Kind = Literal["readings", "intervals", "events", "rejects"]

_TABLES: dict[Kind, tuple[Table, str]] = {
    "readings": (schema.readings, "ts"),
    "intervals": (schema.intervals, "start"),
    "events": (schema.events, "ts"),
    "rejects": (schema.dead_letters, "received_at"),
}


def _chunks(
    engine: Engine,
    kind: Kind,
    meter_id: str | None,
    start: datetime | None,
    end: datetime | None,
    chunk_rows: int,
) -> Iterator[list[dict[str, Any]]]:
    table, time_column = _TABLES[kind]
    column = table.c[time_column]
    query = select(table)
    if meter_id is not None:
        query = query.where(table.c.meter_id == meter_id)
    if start is not None:
        query = query.where(column >= start)
    if end is not None:
        query = query.where(column < end)
    order = [column] if kind == "rejects" else [table.c.meter_id, column]
    query = query.order_by(*order)
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=chunk_rows).execute(query)
        for partition in result.mappings().partitions(chunk_rows):
            yield [_plain(dict(row)) for row in partition]


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """JSON columns as text and raw payload bytes as text where they decode, for flat files."""
    for key, value in row.items():
        if isinstance(value, dict | list):
            import orjson

            row[key] = orjson.dumps(value).decode()
        elif isinstance(value, bytes):
            row[key] = value.decode("utf-8", errors="backslashreplace")
    return row


def arrow_schema_of(table: Table) -> pa.Schema:
    """The file's schema comes from the table, not from the data: a column that is empty in the
    first chunk (or in the whole export) keeps its type, and every export of a kind matches."""
    fields = []
    for column in table.columns:
        python_type: Any
        column_type = column.type
        if isinstance(column_type, TypeDecorator):
            column_type = column_type.impl_instance
        try:
            python_type = column_type.python_type
        except NotImplementedError:
            python_type = str
        if python_type is datetime:
            arrow_type = pa.timestamp("us", tz="UTC")
        elif python_type is float:
            arrow_type = pa.float64()
        elif python_type is int:
            arrow_type = pa.int64()
        elif python_type is bool:
            arrow_type = pa.bool_()
        else:  # text, JSON (serialised) and raw payloads (decoded) are written as text
            arrow_type = pa.string()
        fields.append(pa.field(column.name, arrow_type))
    return pa.schema(fields)


def export(
    engine: Engine,
    kind: Kind,
    out: BinaryIO,
    *,
    file_format: Literal["csv", "parquet"],
    meter_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    chunk_rows: int = 50_000,
) -> int:
    """Write rows to ``out`` chunk by chunk (memory stays bounded); returns the row count."""
    total = 0
    schema_ = arrow_schema_of(_TABLES[kind][0])
    writer = pq.ParquetWriter(out, schema_) if file_format == "parquet" else None
    for rows in _chunks(engine, kind, meter_id, start, end, chunk_rows):
        table = pa.Table.from_pylist(rows, schema=schema_)
        if writer is not None:
            writer.write_table(table)
        else:
            pl.from_arrow(table).write_csv(out, include_header=total == 0)  # type: ignore[union-attr]
        total += len(rows)
    if writer is not None:
        writer.close()
    elif total == 0:
        out.write((",".join(c.name for c in _TABLES[kind][0].columns) + "\n").encode())
    return total
