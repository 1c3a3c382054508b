"""Consumer accounts for the command line (and later the web): open, put on a tariff, look up.

Each function works in the caller's transaction (a ``Connection``) and raises ``ConsumerError``
with a sentence for whatever cannot be done.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection

from meterhub.consumers.accounts import ConsumerError, NewConsumer, check, prices_by_amperes
from meterhub.store import consumers as consumer_store
from meterhub.store import meters as meter_store
from meterhub.store import tariffs as tariff_store
from meterhub.store.consumers import ConsumerRow

__all__ = ["ConsumerError", "NewConsumer", "check"]


def add_consumer(conn: Connection, consumer: NewConsumer, now: datetime | None = None) -> None:
    check(consumer)
    if consumer_store.consumer_exists(conn, consumer.id):
        raise ConsumerError(f"consumer {consumer.id!r} already exists")
    consumer_store.insert_consumer(
        conn,
        consumer_id=consumer.id,
        name=consumer.name.strip(),
        email=consumer.email,
        phone=consumer.phone,
        address=consumer.address,
        category=consumer.category,
        now=now or datetime.now(UTC),
    )


def require_consumer(conn: Connection, consumer_id: str) -> ConsumerRow:
    found = consumer_store.load_consumer(conn, consumer_id)
    if found is None:
        raise ConsumerError(f"unknown consumer {consumer_id!r}")
    return found


def assign_tariff(
    conn: Connection,
    consumer_id: str,
    tariff_id: str,
    from_date: date,
    *,
    amperes: int | None = None,
) -> None:
    """Put a consumer on a stored tariff from ``from_date`` (bills priced from the assignment in
    force on the period's first day). Refused when the tariff prices by ampere rating and none
    is given, or when an assignment already starts that day."""
    if not consumer_store.consumer_exists(conn, consumer_id):
        raise ConsumerError(f"unknown consumer {consumer_id!r}")
    documents = tariff_store.tariff_documents(conn)
    document = documents.get(tariff_id)
    if document is None:
        known = ", ".join(sorted(documents)) or "none stored: meterhub bill load-tariff FILE"
        raise ConsumerError(f"unknown tariff {tariff_id!r} (stored: {known})")
    if amperes is None and prices_by_amperes(document):
        raise ConsumerError(f"tariff {tariff_id} prices by ampere rating: give --amperes")
    taken = consumer_store.tariff_starting(conn, consumer_id, from_date)
    if taken is not None:
        raise ConsumerError(f"consumer {consumer_id} is already on {taken} from {from_date}")
    tariff_store.assign_tariff(conn, consumer_id, tariff_id, from_date, amperes=amperes)


def account(conn: Connection, consumer_id: str) -> dict[str, Any]:
    """The account, its meters and its tariff assignments as a JSON-ready document (plain
    strings, numbers and lists; dates as ISO 8601)."""
    row = require_consumer(conn, consumer_id)
    return {
        "id": row.id,
        "name": row.name,
        "email": row.email,
        "phone": row.phone,
        "address": row.address,
        "status": row.status,
        "category": row.tariff_category,
        "meters": [meter._asdict() for meter in meter_store.meters_of_consumer(conn, consumer_id)],
        "tariffs": [
            {"from": a.from_date.isoformat(), "tariff_id": a.tariff_id, "amperes": a.amperes}
            for a in consumer_store.tariff_assignments_of(conn, consumer_id)
        ],
    }
