"""Helpers shared by the tests of the published tariffs under examples/tariffs/."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from meterhub.billing.core.calculate import Bill, Supply, calculate_bill
from meterhub.billing.core.determinants import determinants_from_totals
from meterhub.billing.core.tariff import Tariff, load_tariff

ROOT = Path(__file__).resolve().parents[2]
TARIFFS = ROOT / "examples" / "tariffs"
USAGE = ROOT / "tests" / "fixtures" / "usage"


def tariff(name: str) -> Tariff:
    return load_tariff(TARIFFS / f"{name}.yaml")


def amounts(bill: Bill) -> list[tuple[str, str]]:
    return [(line.code, f"{line.amount}") for line in bill.lines]


def slab_bill(name: str, start: date, end: date, kwh: str, supply: Supply) -> Bill:
    t = tariff(name)
    determinants = determinants_from_totals(t, start, end, Decimal(kwh))
    return calculate_bill(determinants, t, supply)
