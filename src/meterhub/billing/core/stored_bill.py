"""An issued bill as stored: its row, its lines and its corrections, and what they come to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class StoredBill:
    bill: Mapping[str, Any]  # the ``bills`` row
    lines: Sequence[Mapping[str, Any]]
    adjustments: Sequence[Mapping[str, Any]]

    @property
    def number(self) -> str:
        return str(self.bill["number"])

    @property
    def balance(self) -> Decimal:
        """The bill's total with its adjustments and credit notes (the bill itself unchanged)."""
        total: Decimal = self.bill["total"]
        return total + sum((row["amount"] for row in self.adjustments), Decimal(0))
