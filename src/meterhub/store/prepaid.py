"""SQL for prepaid accounts: accounts, top-ups and interval charges. No commits here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, select

from meterhub.store.schema_delivery import prepaid_accounts


def openings(conn: Connection, consumer_ids: Sequence[str]) -> dict[str, datetime]:
    """When each of these consumers went prepaid (those with an account)."""
    t = prepaid_accounts
    rows = conn.execute(
        select(t.c.consumer_id, t.c.opened_at).where(t.c.consumer_id.in_(list(consumer_ids)))
    )
    return {row.consumer_id: row.opened_at for row in rows}
