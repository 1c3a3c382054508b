"""The four published tariffs under examples/tariffs/, each against bills worked by hand from the
schedule (arithmetic beside every expected number), including a tariff change inside a period.

Figures the tariff files mark NOT SURE are tested as the files state them: these tests pin the
arithmetic of the engine, the files say which prices still need checking against the source.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from meterhub.billing.calculate import Bill, Connection, calculate_bill
from meterhub.billing.determinants import compute_determinants, determinants_from_totals
from meterhub.billing.quote import quote, read_usage_csv
from meterhub.billing.tariff import Tariff, load_tariff
from meterhub.readings.intervals import Interval
from meterhub.readings.model import Quality

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


# ----------------------------------------------------------------------------- DERC (Delhi)


def test_derc_month_3kw_567kwh_fy2018_19() -> None:
    bill = slab_bill(
        "derc-domestic", date(2019, 7, 1), date(2019, 8, 1), "567", Connection(Decimal(3))
    )
    assert amounts(bill) == [
        ("energy", "600.00"),  # 200 * 3.00
        ("energy", "900.00"),  # 200 * 4.50
        ("energy", "1085.50"),  # 167 * 6.50
        ("fixed", "420.00"),  # 3 kW in the >2-5 kW band: 3 * 140
        ("surcharge", "240.44"),  # 8% of (2585.50 + 420.00 = 3005.50) = 240.44
        ("pension-trust", "114.21"),  # 3.8% of 3005.50 = 114.209
        ("electricity-duty", "168.01"),  # 5% of (3005.50 + 240.44 + 114.21 = 3360.15) = 168.0075
        ("rounding", "-0.16"),  # 3360.15 + 168.01 = 3528.16, payable in whole rupees
    ]
    assert bill.total == Decimal("3528")


def test_derc_fy2019_20_fixed_charge_bands() -> None:
    bill = slab_bill(
        "derc-domestic", date(2019, 9, 1), date(2019, 10, 1), "150", Connection(Decimal("1.5"))
    )
    # 150 * 3.00 = 450.00; 1.5 kW in the <=2 kW band: 1.5 * 20 = 30.00; base 480.00
    # 8% = 38.40; 3.8% = 18.24; duty 5% of (480 + 38.40 + 18.24 = 536.64) = 26.832 -> 26.83
    # 536.64 + 26.83 = 563.47 -> 563
    assert bill.amount_of("fixed") == Decimal("30.00")
    assert bill.total == Decimal("563")


def test_derc_order_change_on_1_august_2019_prorated_by_days() -> None:
    # 17 July - 15 August 2019: 15 days under FY 2018-19, 15 under FY 2019-20. 600 kWh shared
    # by days: 300 kWh each; monthly slabs scaled by 15/30: 100 / 200 / 400 / 600 kWh.
    bill = slab_bill(
        "derc-domestic", date(2019, 7, 17), date(2019, 8, 16), "600", Connection(Decimal(3))
    )
    assert amounts(bill) == [
        # FY 2018-19 part
        ("energy", "300.00"),  # 100 * 3.00
        ("energy", "450.00"),  # 100 * 4.50
        ("energy", "650.00"),  # 100 * 6.50
        ("fixed", "210.00"),  # 3 kW * 140 * 15/30
        ("surcharge", "128.80"),  # 8% of 1610.00
        ("pension-trust", "61.18"),  # 3.8% of 1610.00
        ("electricity-duty", "90.00"),  # 5% of (1610 + 128.80 + 61.18 = 1799.98) = 89.999
        # FY 2019-20 part
        ("energy", "300.00"),
        ("energy", "450.00"),
        ("energy", "650.00"),
        ("fixed", "75.00"),  # 3 kW * 50 * 15/30
        ("surcharge", "118.00"),  # 8% of 1475.00
        ("pension-trust", "56.05"),  # 3.8% of 1475.00
        ("electricity-duty", "82.45"),  # 5% of (1475 + 118 + 56.05 = 1649.05) = 82.4525
        ("rounding", "-0.48"),  # 1889.98 + 1731.50 = 3621.48 -> 3621
    ]
    assert bill.total == Decimal("3621")
    assert [line.effective_from for line in bill.lines[:1] + bill.lines[7:8]] == [
        date(2018, 4, 1),
        date(2019, 8, 1),
    ]


# ----------------------------------------------------------------------------- NEA (Nepal)


def nea(kwh: str, amperes: int | None, start: date = date(2024, 1, 1)) -> Bill:
    end = date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return slab_bill("nea-domestic", start, end, kwh, Connection(amperes=amperes))


def test_nea_15a_100kwh() -> None:
    bill = nea("100", 15)
    # 20 * 4.00 + 10 * 6.50 + 20 * 8.00 + 50 * 9.50 = 80 + 65 + 160 + 475 = 780.00
    # minimum charge, 15 A, 51-150 kWh block: 125.00;  780 + 125 = 905.00
    assert bill.amount_of("energy") == Decimal("780.00")
    assert bill.amount_of("minimum-charge") == Decimal("125.00")
    assert bill.total == Decimal("905.00")


def test_nea_5a_within_first_block_pays_only_the_minimum_charge() -> None:
    bill = nea("15", 5)
    # 15 * 0.00 = 0.00; minimum charge, 5 A, 0-20 kWh: 30.00
    assert amounts(bill) == [("energy-5a", "0.00"), ("minimum-charge", "30.00")]
    assert bill.total == Decimal("30.00")


def test_nea_60a_500kwh_every_block() -> None:
    bill = nea("500", 60)
    # 20*6 + 10*6.5 + 20*8 + 100*9.5 + 100*9.5 + 150*10 + 100*11
    # = 120 + 65 + 160 + 950 + 950 + 1500 + 1100 = 4845.00; minimum (60 A, >400 kWh) 275.00
    assert bill.total == Decimal("5120.00")  # 4845 + 275


def test_nea_ampere_rating_is_required() -> None:
    from meterhub.billing.tariff import TariffGap

    with pytest.raises(TariffGap, match="ampere rating"):
        nea("100", None)


def test_nea_schedule_change_inside_the_period() -> None:
    # 2 - 31 July 2021 (30 days), new schedule from 17 July: 15 days each. 40 kWh -> 20 kWh per
    # part; blocks scaled by 15/30: 10 / 15 / 25 / 75 / ... kWh.
    bill = slab_bill(
        "nea-domestic", date(2021, 7, 2), date(2021, 8, 1), "40", Connection(amperes=5)
    )
    assert amounts(bill) == [
        ("energy-5a", "30.00"),  # 10 * 3.00 (old schedule)
        ("energy-5a", "32.50"),  # 5 * 6.50
        ("energy-5a", "40.00"),  # 5 * 8.00
        ("minimum-charge", "37.50"),  # 20 kWh is in the 31-50 block scaled (15-25]: 75 * 15/30
        ("energy-5a", "0.00"),  # 10 * 0.00 (new schedule)
        ("energy-5a", "32.50"),
        ("energy-5a", "40.00"),
        ("minimum-charge", "37.50"),
    ]
    assert bill.total == Decimal("250.00")  # 140.00 + 110.00
    assert bill.payment_terms is not None
    assert bill.payment_terms.prompt_payment_rebate_percent == Decimal(2)


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
