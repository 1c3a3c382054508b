"""Bill numbers: sequential and gap-free per utility and year, e.g. ``MH-2026-000123``.

The sequence comes from the store's counter (``store.bill_numbers``), taken in the transaction
that inserts the bills; this is how a sequence number is written.
"""

from __future__ import annotations

DIGITS = 6


def format_number(utility: str, year: int, sequence: int) -> str:
    return f"{utility}-{year}-{sequence:0{DIGITS}d}"


def numbers(utility: str, year: int, first: int, count: int) -> list[str]:
    """``count`` consecutive bill numbers from sequence ``first`` on."""
    return [format_number(utility, year, first + offset) for offset in range(count)]
