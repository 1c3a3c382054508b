"""Consumer accounts: who is supplied and billed, their contact details and their tariff.

Checks are here (one place for the CLI and, later, the web): an id that fits bill numbers and
URLs, an e-mail address with a domain, a phone number in international form (SMS gateways
want E.164), a tariff that exists and an ampere rating where the tariff prices by it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import Connection, insert, select

from meterhub.store import schema
from meterhub.store import tariffs as tariff_store
from meterhub.store.schema_billing import tariff_assignments

CONSUMER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


class ConsumerError(ValueError):
    """A request about a consumer that cannot be carried out; the message says why."""


@dataclass(frozen=True, slots=True)
class NewConsumer:
    id: str
    name: str
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    category: str | None = None


def check(consumer: NewConsumer) -> None:
    if not CONSUMER_ID.match(consumer.id):
        raise ConsumerError(
            f"consumer id {consumer.id!r}: letters, digits, '.', '_' or '-', up to 64, "
            "starting with a letter or digit"
        )
    if not consumer.name.strip():
        raise ConsumerError("a consumer needs a name")
    if consumer.email is not None and not EMAIL.match(consumer.email):
        raise ConsumerError(f"e-mail {consumer.email!r} is not an address")
    if consumer.phone is not None and not E164.match(consumer.phone):
        raise ConsumerError(f"phone {consumer.phone!r}: international form, e.g. +9779812345678")


def add_consumer(conn: Connection, consumer: NewConsumer, now: datetime | None = None) -> None:
    check(consumer)
    c = schema.consumers
    if conn.execute(select(c.c.id).where(c.c.id == consumer.id)).first() is not None:
        raise ConsumerError(f"consumer {consumer.id!r} already exists")
    conn.execute(
        insert(c).values(
            id=consumer.id,
            name=consumer.name.strip(),
            email=consumer.email,
            phone=consumer.phone,
            address=consumer.address,
            tariff_category=consumer.category,
            status="active",
            created_at=now or datetime.now(UTC),
        )
    )


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
    c = schema.consumers
    if conn.execute(select(c.c.id).where(c.c.id == consumer_id)).first() is None:
        raise ConsumerError(f"unknown consumer {consumer_id!r}")
    tariffs = tariff_store.tariff_documents(conn)
    document = tariffs.get(tariff_id)
    if document is None:
        known = ", ".join(sorted(tariffs)) or "none stored: meterhub bill load-tariff FILE"
        raise ConsumerError(f"unknown tariff {tariff_id!r} (stored: {known})")
    if amperes is None and _prices_by_amperes(document):
        raise ConsumerError(f"tariff {tariff_id} prices by ampere rating: give --amperes")
    t = tariff_assignments
    taken = conn.execute(
        select(t.c.tariff_id).where(t.c.consumer_id == consumer_id, t.c.from_date == from_date)
    ).first()
    if taken is not None:
        raise ConsumerError(
            f"consumer {consumer_id} is already on {taken.tariff_id} from {from_date}"
        )
    tariff_store.assign_tariff(conn, consumer_id, tariff_id, from_date, amperes=amperes)


def _prices_by_amperes(document: object) -> bool:
    """Whether any condition or band of the tariff document names an ampere rating."""
    if isinstance(document, dict):
        return any(
            (key == "amperes" and value is not None) or _prices_by_amperes(value)
            for key, value in document.items()
        )
    if isinstance(document, list):
        return any(_prices_by_amperes(item) for item in document)
    return False
