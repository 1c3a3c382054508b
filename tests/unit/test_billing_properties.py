"""Properties of the billing math (Hypothesis)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from meterhub.billing.core.calculate import Supply, calculate_bill
from meterhub.billing.core.determinants import compute_determinants, determinants_from_totals
from meterhub.billing.core.tariff import Tariff, load_tariff
from meterhub.readings.intervals import Interval
from meterhub.readings.model import Quality

TARIFFS = Path(__file__).resolve().parents[2] / "examples" / "tariffs"
DERC = load_tariff(TARIFFS / "derc-domestic.yaml")
NEA = load_tariff(TARIFFS / "nea-domestic.yaml")
PGE = load_tariff(TARIFFS / "pge-e-tou-c.yaml")
UK = load_tariff(TARIFFS / "uk-economy7-price-cap.yaml")

kwh = st.decimals(min_value=0, max_value=5000, places=3)
amperes = st.sampled_from([5, 15, 30, 60])
loads = st.decimals(min_value="0.5", max_value=40, places=1)
starts = st.dates(min_value=date(2020, 6, 15), max_value=date(2025, 12, 1))  # NEA's first version


def slab_case(tariff: Tariff, start: date, days: int, energy: Decimal, load: Decimal, amps: int):
    end = start + timedelta(days=days)
    determinants = determinants_from_totals(tariff, start, end, energy)
    return calculate_bill(determinants, tariff, Supply(load, amps))


@settings(max_examples=150, deadline=None)
@given(
    tariff=st.sampled_from([DERC, NEA]),
    start=starts,
    days=st.integers(1, 62),
    energy=kwh,
    load=loads,
    amps=amperes,
)
def test_lines_sum_to_the_total(tariff, start, days, energy, load, amps) -> None:
    bill = slab_case(tariff, start, days, energy, load, amps)
    assert sum(line.amount for line in bill.lines) == bill.total


@settings(max_examples=150, deadline=None)
@given(
    tariff=st.sampled_from([DERC, NEA]),
    start=starts,
    days=st.integers(28, 31),
    energy=kwh,
    more=kwh,
    load=loads,
    amps=amperes,
)
def test_total_is_monotone_in_consumption(tariff, start, days, energy, more, load, amps) -> None:
    lower = slab_case(tariff, start, days, energy, load, amps)
    higher = slab_case(tariff, start, days, energy + more, load, amps)
    assert higher.total >= lower.total


@settings(max_examples=150, deadline=None)
@given(
    tariff=st.sampled_from([DERC, NEA]),
    start=st.dates(min_value=date(2022, 1, 1), max_value=date(2024, 12, 1)),
    days=st.integers(2, 40),
    cut=st.integers(1, 39),
    energy=kwh,
    load=loads,
    amps=amperes,
)
def test_prorating_into_two_parts_with_the_same_tariff_is_the_whole(
    tariff, start, days, cut, energy, load, amps
) -> None:
    """Split a period at ``cut`` and price each part as a share of the whole cycle: the same bill
    as the whole, within the stated rounding (each line rounds once more, the total once more)."""
    cut = 1 + cut % (days - 1)
    end, middle = start + timedelta(days=days), start + timedelta(days=cut)
    supply = Supply(load, amps)
    whole = calculate_bill(determinants_from_totals(tariff, start, end, energy), tariff, supply)
    share = energy * cut / days
    first = calculate_bill(
        determinants_from_totals(tariff, start, middle, share), tariff, supply, cycle_days=days
    )
    second = calculate_bill(
        determinants_from_totals(tariff, middle, end, energy - share),
        tariff,
        supply,
        cycle_days=days,
    )
    rounding = tariff.rounding
    tolerance = rounding.line * (len(first.lines) + len(second.lines)) + 2 * rounding.total
    # A consumption on a block boundary can fall in either band of an energy-banded charge
    # once it is split: NEA's minimum charge bands and its 5 A free-units credit (all or
    # nothing at its limit). Compare without those components there.
    if tariff is NEA:
        banded = ("minimum-charge", "free-units-5a", "rounding")
        difference = (first.total + second.total - whole.total) - (
            first.amount_of(*banded) + second.amount_of(*banded) - whole.amount_of(*banded)
        )
    else:
        difference = first.total + second.total - whole.total
    assert abs(difference) <= tolerance


@settings(max_examples=60, deadline=None)
@given(
    tariff=st.sampled_from([PGE, UK]),
    start=st.datetimes(min_value=datetime(2025, 1, 2), max_value=datetime(2025, 12, 1)),
    energies=st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=400),
)
def test_determinants_conserve_energy(tariff, start, energies) -> None:
    first = start.replace(tzinfo=UTC, minute=0, second=0, microsecond=0)
    intervals = [
        Interval("m", first + i * timedelta(minutes=15), 900, value, 0.0, Quality.ACTUAL)
        for i, value in enumerate(energies)
    ]
    zone = tariff.zone
    period_start = first.astimezone(zone).date()
    period_end = intervals[-1].start.astimezone(zone).date() + timedelta(days=1)
    d = compute_determinants(intervals, tariff, period_start, period_end)
    assert sum(d.energy_by_bin.values(), Decimal(0)) == d.import_kwh
    assert sum(d.energy_by_day_type.values(), Decimal(0)) == d.import_kwh
    assert abs(float(d.import_kwh) - sum(energies)) < 1e-6 * len(energies)
    bill = calculate_bill(d, tariff)
    assert sum(line.amount for line in bill.lines) == bill.total
