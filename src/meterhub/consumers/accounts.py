"""Consumer accounts: who is supplied and billed, their contact details and their tariff (pure).

Checks are here (one place for the CLI and, later, the web): an id that fits bill numbers and
URLs, an e-mail address with a domain, a phone number in international form (SMS gateways
want E.164), and whether a tariff needs an ampere rating.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# fullmatch: a pattern ending in "$" also matches before a trailing newline ("C1\n").
CONSUMER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
E164 = re.compile(r"\+[1-9][0-9]{6,14}")


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
    if not CONSUMER_ID.fullmatch(consumer.id):
        raise ConsumerError(
            f"consumer id {consumer.id!r}: letters, digits, '.', '_' or '-', up to 64, "
            "starting with a letter or digit"
        )
    if not consumer.name.strip():
        raise ConsumerError("a consumer needs a name")
    if consumer.email is not None and not EMAIL.fullmatch(consumer.email):
        raise ConsumerError(f"e-mail {consumer.email!r} is not an address")
    if consumer.phone is not None and not E164.fullmatch(consumer.phone):
        raise ConsumerError(f"phone {consumer.phone!r}: international form, e.g. +9779812345678")


def prices_by_amperes(document: object) -> bool:
    """Whether any condition or band of the tariff document names an ampere rating."""
    if isinstance(document, dict):
        return any(
            (key == "amperes" and value is not None) or prices_by_amperes(value)
            for key, value in document.items()
        )
    if isinstance(document, list):
        return any(prices_by_amperes(item) for item in document)
    return False
