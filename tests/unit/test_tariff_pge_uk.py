"""The PG&E E-TOU-C and UK Economy 7 tariffs under examples/tariffs/.

Bills worked by hand from the published schedule (arithmetic beside every expected number),
including a tariff change inside a period.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from tariff_examples import USAGE, amounts, tariff

from meterhub.billing.calculate import Connection, calculate_bill
from meterhub.billing.determinants import compute_determinants
from meterhub.billing.quote import quote, read_usage_csv
from meterhub.readings.intervals import Interval
from meterhub.readings.model import Quality

# ----------------------------------------------------------------------------- PG&E E-TOU-C


def test_pge_change_inside_a_winter_period_across_dst() -> None:
    # 15 Feb - 15 Mar 2024 (30 local days) at a constant 1 kW. 10 March has 23 hours (DST), so
    # 719 kWh; peak 4-9 p.m. every day: 30 * 5 = 150 kWh, off-peak 569 kWh. All winter. The
    # 1 March rate change splits the period 15/15 days: 75 peak and 284.5 off-peak kWh each.
    t = tariff("pge-e-tou-c")
    determinants, bill = quote(
        t,
        read_usage_csv(USAGE / "pge-1kw-2024-02-15-to-03-15.csv"),
        Connection(),
    )
    assert determinants.import_kwh == Decimal("719.000000")
    assert determinants.energy_by_bin == {
        ("winter", "peak"): Decimal("150.000000"),
        ("winter", "off-peak"): Decimal("569.000000"),
    }
    assert amounts(bill) == [
        ("energy", "119.49"),  # off-peak 284.5 * 0.42 = 119.49
        ("energy", "33.75"),  # peak 75 * 0.45
        ("baseline-credit-winter", "-11.25"),  # 7.5 kWh/day * 15 days = 112.5 kWh * -0.10
        ("baseline-credit-winter", "0.00"),  # the rest, 247 kWh, at 0
        ("energy", "130.87"),  # 284.5 * 0.46
        ("energy", "36.75"),  # 75 * 0.49
        ("baseline-credit-winter", "-11.25"),
        ("baseline-credit-winter", "0.00"),
    ]
    assert bill.total == Decimal("298.36")  # 141.99 + 156.37


def test_pge_minimum_delivery_charge_per_day() -> None:
    t = tariff("pge-e-tou-c")
    # One kWh off-peak in March 2024 (31 days).
    one = Interval("m", datetime(2024, 3, 5, 11, tzinfo=UTC), 900, 1.0, 0.0, Quality.ACTUAL)
    bill = calculate_bill(compute_determinants([one], t, date(2024, 3, 1), date(2024, 4, 1)), t)
    assert amounts(bill) == [
        ("energy", "0.46"),  # 1 * 0.46
        ("baseline-credit-winter", "-0.10"),  # 1 * -0.10
        ("minimum-charge", "11.86"),  # 0.39425 * 31 = 12.22175, less 0.36 billed = 11.86175
    ]
    assert bill.total == Decimal("12.22")


# ----------------------------------------------------------------------------- UK Economy 7


def test_uk_economy7_price_cap_change_on_1_april_across_bst() -> None:
    # 17 Mar - 15 Apr 2024 (30 local days); BST from 31 March, so 719 kWh at 1 kW. Night hours
    # are 00:00-07:00 GMT on all 30 UTC dates: 210 kWh; day 509 kWh. 15 days per cap period.
    t = tariff("uk-economy7-price-cap")
    determinants, bill = quote(
        t, read_usage_csv(USAGE / "uk-1kw-2024-03-17-to-04-15.csv"), Connection()
    )
    assert determinants.energy_by_bin == {
        ("all", "night"): Decimal("210.000000"),
        ("all", "day"): Decimal("509.000000"),
    }
    assert amounts(bill) == [
        ("energy", "83.99"),  # day 254.5 * 0.33 = 83.985
        ("energy", "15.75"),  # night 105 * 0.15
        ("standing-charge", "8.00"),  # 15 days * 0.5335 = 8.0025
        ("energy", "71.26"),  # 254.5 * 0.28
        ("energy", "13.65"),  # 105 * 0.13
        ("standing-charge", "9.02"),  # 15 * 0.6010 = 9.015
    ]
    assert bill.total == Decimal("201.67")  # 107.74 + 93.93
