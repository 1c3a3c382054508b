"""The events table: meter and platform events, each stored once (its id is deterministic)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from meterhub.readings.events import MeterEvent
from meterhub.store import schema
from meterhub.store.dialects import dialect_insert


def insert_events(conn: Connection, events: Sequence[MeterEvent]) -> int:
    """Insert ``events``, skipping any already stored (same meter and id); returns how many
    were new."""
    if not events:
        return 0
    stmt = dialect_insert(conn, schema.events).on_conflict_do_nothing()
    rows = [
        {
            "meter_id": e.meter_id,
            "id": e.id,
            "ts": e.ts,
            "type": e.type,
            "source": e.source,
            "payload": e.payload,
            "received_at": e.received_at,
        }
        for e in events
    ]
    return conn.execute(stmt, rows).rowcount
